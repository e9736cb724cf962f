from django.urls import path

from accounts import api

urlpatterns = [
    path("auth/token/", api.TokenApi.as_view(), name="api-auth-token"),
    path("auth/tokens/", api.TokenListCreateApi.as_view(), name="api-auth-tokens"),
    path("auth/tokens/<str:pk>/", api.TokenDetailApi.as_view(), name="api-auth-token-detail"),
    path("users/", api.UserListCreateApi.as_view(), name="api-users"),
    path("users/<int:pk>/", api.UserDetailApi.as_view(), name="api-user-detail"),
    path("users/<int:pk>/password/", api.UserPasswordApi.as_view(), name="api-user-password"),
    path("users/<int:pk>/email/", api.UserEmailApi.as_view(), name="api-user-email"),
    path("users/<int:pk>/role/", api.UserRoleApi.as_view(), name="api-user-role"),
]
