from django.urls import path

from accounts import views

app_name = "accounts"

urlpatterns = [
    path("users/", views.user_list, name="user_list"),
    path("users/create/", views.user_create, name="user_create"),
    path("users/<int:pk>/delete/", views.user_delete, name="user_delete"),
    path("users/<int:pk>/password/", views.user_password, name="user_password"),
    path("users/<int:pk>/email/", views.user_email, name="user_email"),
    path("users/<int:pk>/role/", views.user_role, name="user_role"),
    path("account/tokens/", views.tokens, name="tokens"),
    path("account/tokens/<int:pk>/revoke/", views.token_revoke, name="token_revoke"),
]
