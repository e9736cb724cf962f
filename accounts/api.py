from allauth.account.adapter import get_adapter
from django.core.exceptions import ValidationError as DjangoValidationError
from django.shortcuts import get_object_or_404
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import selectors, services
from accounts.models import User
from core.permissions import IsStaff


class UserOutputSerializer(serializers.ModelSerializer):
    role = serializers.CharField(read_only=True)
    is_admin = serializers.BooleanField(source="is_staff", read_only=True)
    is_root = serializers.BooleanField(source="is_superuser", read_only=True)

    class Meta:
        model = User
        fields = ["id", "username", "email", "role", "is_admin", "is_root", "date_joined", "last_login"]


class TokenApi(APIView):
    """Exchange a username (or email) and password for an API token; DELETE revokes it."""

    class InputSerializer(serializers.Serializer):
        username = serializers.CharField(max_length=254, help_text="Username or email address")
        password = serializers.CharField(max_length=4096, trim_whitespace=False, style={"input_type": "password"})
        code = serializers.CharField(
            max_length=64, required=False, default="",
            help_text="Two-factor code (authenticator app or recovery code); required when the account has one",
        )

    class OutputSerializer(serializers.Serializer):
        token = serializers.CharField()
        user_id = serializers.IntegerField()
        username = serializers.CharField()
        is_admin = serializers.BooleanField()
        is_root = serializers.BooleanField()

    def get_permissions(self):
        if self.request.method == "POST":
            return [AllowAny()]
        return [IsAuthenticated()]

    def get_authenticators(self):
        # The login endpoint must not fail on a stale token header or CSRF.
        if self.request is not None and self.request.method == "POST":
            return []
        return super().get_authenticators()

    @extend_schema(request=InputSerializer, responses={200: OutputSerializer})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        login = data.validated_data["username"].strip()
        field = "email" if "@" in login else "username"
        credentials = {field: login, "password": data.validated_data["password"]}
        try:
            user = get_adapter(request._request).authenticate(request._request, **credentials)
        except DjangoValidationError as exc:
            return Response({"detail": " ".join(exc.messages)}, status=status.HTTP_429_TOO_MANY_REQUESTS)
        if user is None or not user.is_active:
            return Response(
                {"detail": "The username/email or password is not correct."}, status=status.HTTP_400_BAD_REQUEST
            )
        # A password alone does not give a token to an account that has two-factor authentication.
        if services.two_factor_enrolled(user=user) and not services.two_factor_verify(
            user=user, code=data.validated_data["code"]
        ):
            return Response(
                {"code": ["This account uses two-factor authentication: send a current code from the authenticator app."]},
                status=status.HTTP_400_BAD_REQUEST,
            )
        token, _ = services.token_get_or_create(user=user, request=request._request)
        out = {
            "token": token.key,
            "user_id": user.pk,
            "username": user.username,
            "is_admin": user.is_staff,
            "is_root": user.is_superuser,
        }
        return Response(self.OutputSerializer(out).data)

    @extend_schema(request=None, responses={204: None})
    def delete(self, request):
        services.token_revoke(user=request.user, request=request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class UserListCreateApi(APIView):
    permission_classes = [IsAuthenticated, IsStaff]

    class InputSerializer(serializers.Serializer):
        username = serializers.CharField(max_length=150)
        email = serializers.EmailField(max_length=254)
        password = serializers.CharField(max_length=4096, trim_whitespace=False)
        is_admin = serializers.BooleanField(default=False)

    @extend_schema(responses=UserOutputSerializer(many=True))
    def get(self, request):
        users = selectors.user_list(actor=request.user)
        return Response(UserOutputSerializer(users, many=True).data)

    @extend_schema(request=InputSerializer, responses={201: UserOutputSerializer})
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.user_create(actor=request.user, request=request._request, **data.validated_data)
        return Response(UserOutputSerializer(user).data, status=status.HTTP_201_CREATED)


class UserDetailApi(APIView):
    permission_classes = [IsAuthenticated, IsStaff]

    @extend_schema(responses=UserOutputSerializer)
    def get(self, request, pk: int):
        return Response(UserOutputSerializer(get_object_or_404(User, pk=pk)).data)

    @extend_schema(responses={204: None})
    def delete(self, request, pk: int):
        services.user_delete(actor=request.user, user=get_object_or_404(User, pk=pk), request=request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class UserPasswordApi(APIView):
    permission_classes = [IsAuthenticated, IsStaff]

    class InputSerializer(serializers.Serializer):
        new_password = serializers.CharField(max_length=4096, trim_whitespace=False)

    @extend_schema(request=InputSerializer, responses={204: None})
    def post(self, request, pk: int):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = get_object_or_404(User, pk=pk)
        try:
            services.user_set_password(
                actor=request.user, user=user, password=data.validated_data["new_password"], request=request._request
            )
        except DjangoValidationError as exc:
            raise serializers.ValidationError({"new_password": exc.message_dict.get("password", exc.messages)})
        return Response(status=status.HTTP_204_NO_CONTENT)


class UserRoleApi(APIView):
    """Grant or revoke the admin role (root only)."""

    permission_classes = [IsAuthenticated, IsStaff]

    class InputSerializer(serializers.Serializer):
        is_admin = serializers.BooleanField()

    @extend_schema(request=InputSerializer, responses=UserOutputSerializer)
    def post(self, request, pk: int):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = services.user_set_admin(
            actor=request.user, user=get_object_or_404(User, pk=pk),
            is_admin=data.validated_data["is_admin"], request=request._request,
        )
        return Response(UserOutputSerializer(user).data)




class UserEmailApi(APIView):
    """Change a user's e-mail address (root: anyone's; an admin: a plain user's or their own)."""

    permission_classes = [IsAuthenticated, IsStaff]

    class InputSerializer(serializers.Serializer):
        email = serializers.EmailField(max_length=254)

    @extend_schema(request=InputSerializer, responses=UserOutputSerializer)
    def post(self, request, pk: int):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        user = get_object_or_404(User, pk=pk)
        try:
            services.user_set_email(
                actor=request.user, user=user, email=data.validated_data["email"], request=request._request
            )
        except DjangoValidationError as exc:
            raise serializers.ValidationError(exc.message_dict)
        return Response(UserOutputSerializer(user).data)
