from allauth.account.adapter import get_adapter
from django.conf import settings
from django.core.validators import RegexValidator
from django.core.exceptions import ValidationError as DjangoValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404
from django.utils import timezone
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.permissions import AllowAny, IsAuthenticated
from rest_framework.response import Response
from rest_framework.views import APIView

from accounts import selectors, services
from accounts.models import ApiToken, User
from core.fields import StrictCharField
from core.permissions import IsStaff


class UserOutputSerializer(serializers.ModelSerializer):
    role = serializers.CharField(read_only=True)
    is_admin = serializers.BooleanField(source="is_staff", read_only=True)
    is_root = serializers.BooleanField(source="is_superuser", read_only=True)

    class Meta:
        model = User
        fields = ["id", "username", "email", "role", "is_admin", "is_root", "date_joined", "last_login"]


def _error(name: str, description: str) -> OpenApiResponse:
    return OpenApiResponse(
        response=inline_serializer(name, {"detail": serializers.CharField()}), description=description
    )


FIELD_ERRORS = OpenApiResponse(
    response=OpenApiTypes.OBJECT, description="Invalid input: a list of messages per field (or `detail`)."
)
NOT_AUTHENTICATED = _error("TokenAuthError", "No valid token or session (missing, wrong, expired or revoked).")


def _name_field(**kwargs) -> serializers.CharField:
    # Mirrors accounts.services.token_create, so the schema states what the service accepts
    # (text only: a JSON number is not a name).
    return StrictCharField(
        max_length=services.TOKEN_NAME_MAX, trim_whitespace=False,
        validators=[RegexValidator(services.TOKEN_NAME_PATTERN, message=services.TOKEN_NAME_MESSAGE)], **kwargs,
    )


def _days_field() -> serializers.IntegerField:
    # The bounds are the service's (accounts.services.token_create checks them too).
    return serializers.IntegerField(
        required=False, min_value=1, max_value=settings.API_TOKEN_MAX_DAYS,
        help_text=f"Lifetime in days (default {settings.API_TOKEN_DEFAULT_DAYS}, at most {settings.API_TOKEN_MAX_DAYS})",
    )


class TokenOutputSerializer(serializers.Serializer):
    """A token as listed: never its key (shown once at creation) nor any part of it."""

    id = serializers.IntegerField()
    name = serializers.CharField()
    created = serializers.DateTimeField()
    expiry = serializers.DateTimeField(allow_null=True)
    last_used_at = serializers.DateTimeField(allow_null=True)
    expired = serializers.BooleanField()


def _token_data(token) -> dict:
    return {
        "id": token.pk, "name": token.name, "created": token.created, "expiry": token.expiry,
        "last_used_at": token.last_used_at, "expired": token.expiry is not None and token.expiry <= timezone.now(),
    }


class NewTokenOutputSerializer(TokenOutputSerializer):
    token = serializers.CharField(help_text="The key: shown this once, never again (only its hash is stored).")


class TokenApi(APIView):
    """POST: a username (or email) and password → a new API token, shown once. DELETE: revoke the token used."""

    class InputSerializer(serializers.Serializer):
        username = serializers.CharField(max_length=254, help_text="Username or email address")
        password = serializers.CharField(max_length=4096, trim_whitespace=False, style={"input_type": "password"})
        name = _name_field(required=False, help_text="What uses the token (default: API login)")
        days = _days_field()
        code = StrictCharField(
            max_length=64, required=False, default="", allow_blank=True,
            help_text="Two-factor code (authenticator app or recovery code); required when the account has one",
        )

    class OutputSerializer(NewTokenOutputSerializer):
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

    @extend_schema(
        request=InputSerializer, auth=[],
        responses={
            200: OutputSerializer, 400: FIELD_ERRORS,
            403: _error("TokenLoginNoAddress", "The client's address could not be determined (the login limit needs it)."),
            429: _error("TokenLoginLocked", "Too many failed logins for this account or address (shared with the login page)."),
        },
    )
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
        token, key = services.token_create(
            user=user, name=data.validated_data.get("name") or "API login", days=data.validated_data.get("days"),
            request=request._request,
        )
        out = {
            **_token_data(token), "token": key, "user_id": user.pk, "username": user.username,
            "is_admin": user.is_staff, "is_root": user.is_superuser,
        }
        return Response(self.OutputSerializer(out).data)

    @extend_schema(
        request=None,
        responses={
            204: None, 401: NOT_AUTHENTICATED,
            400: _error("TokenNotUsed", "The request was not authenticated by a token (e.g. a browser session)."),
        },
    )
    def delete(self, request):
        if not isinstance(request.auth, ApiToken):
            return Response(
                {"detail": "This request was not authenticated by an API token; revoke tokens by id at /api/auth/tokens/{id}/."},
                status=status.HTTP_400_BAD_REQUEST,
            )
        services.token_revoke(actor=request.user, token=request.auth, request=request._request)
        return Response(status=status.HTTP_204_NO_CONTENT)


class TokenListCreateApi(APIView):
    """Your API tokens: list them (never their keys), or create one (its key is in this answer only)."""

    class InputSerializer(serializers.Serializer):
        name = _name_field(help_text="What uses the token")
        days = _days_field()

    @extend_schema(responses={200: TokenOutputSerializer(many=True), 401: NOT_AUTHENTICATED})
    def get(self, request):
        tokens = selectors.token_list(user=request.user)
        return Response(TokenOutputSerializer([_token_data(t) for t in tokens], many=True).data)

    @extend_schema(
        request=InputSerializer,
        responses={201: NewTokenOutputSerializer, 400: FIELD_ERRORS, 401: NOT_AUTHENTICATED,
                   403: _error("TokenForbidden", "CSRF check failed (browser session without the CSRF header).")},
    )
    def post(self, request):
        data = self.InputSerializer(data=request.data)
        data.is_valid(raise_exception=True)
        token, key = services.token_create(
            user=request.user, name=data.validated_data["name"], days=data.validated_data.get("days"),
            request=request._request,
        )
        return Response(NewTokenOutputSerializer({**_token_data(token), "token": key}).data, status=status.HTTP_201_CREATED)


class TokenDetailApi(APIView):
    """Revoke one of your tokens by id (someone else's is 404, like an unknown id)."""

    @extend_schema(
        parameters=[OpenApiParameter("id", OpenApiTypes.INT, OpenApiParameter.PATH, description="The token's id")],
        responses={204: None, 401: NOT_AUTHENTICATED,
                   403: _error("TokenRevokeForbidden", "CSRF check failed (browser session without the CSRF header)."),
                   404: _error("TokenNotFound", "No token of yours has this id.")},
    )
    def delete(self, request, pk: str):
        token = selectors.token_get_for_owner(user=request.user, pk=pk)
        if token is None:
            raise Http404("No token of yours has this id.")
        services.token_revoke(actor=request.user, token=token, request=request._request)
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
