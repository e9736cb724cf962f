from django.contrib import admin, messages
from django.contrib.auth.admin import UserAdmin as DjangoUserAdmin
from django.core.exceptions import ValidationError
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied

from accounts import services
from accounts.models import ActivityEvent, ApiToken, User

# Admin logins go through the platform's login page (allauth), so they share
# its rate limit and activity log.
admin.site.login = login_required(admin.site.login)
admin.site.site_header = "Trading data platform — administration"


@admin.register(User)
class UserAdmin(DjangoUserAdmin):
    """Same rules as the user management page: enforced by accounts.services."""

    list_display = ["id", "username", "email", "role_label", "is_active", "last_login"]
    list_filter = ["is_staff", "is_superuser", "is_active"]
    fieldsets = (
        (None, {"fields": ("username", "password")}),
        ("Personal info", {"fields": ("first_name", "last_name", "email")}),
        ("Role", {"fields": ("is_active", "is_staff")}),
        ("Important dates", {"fields": ("last_login", "date_joined")}),
    )
    add_fieldsets = ((None, {"classes": ("wide",), "fields": ("username", "email", "password1", "password2")}),)
    readonly_fields = ["last_login", "date_joined"]

    @admin.display(description="Role")
    def role_label(self, obj):
        return obj.role_label

    def get_form(self, request, obj=None, **kwargs):
        form = super().get_form(request, obj, **kwargs)
        if obj is None or "email" not in form.base_fields:
            return form

        class EmailRulesForm(form):
            """The address goes through accounts.services: same rules and errors as the page and the API."""

            def clean_email(self):
                email = self.cleaned_data.get("email") or ""
                if email == (obj.email or ""):
                    return email
                allowed, reason = services.can_set_email(actor=request.user, target=obj)
                if not allowed:
                    raise ValidationError(reason)
                try:
                    return services.email_validate(email=email, user=obj)
                except ValidationError as exc:
                    raise ValidationError(exc.message_dict["email"]) from None

        return EmailRulesForm

    def get_readonly_fields(self, request, obj=None):
        fields = list(super().get_readonly_fields(request, obj))
        if not request.user.is_superuser or (obj is not None and obj.is_superuser):
            fields.append("is_staff")
        return fields

    def has_delete_permission(self, request, obj=None):
        if obj is None:
            return request.user.is_staff
        return services.can_delete(actor=request.user, target=obj)[0]

    def has_change_permission(self, request, obj=None):
        if obj is None or not request.user.is_staff:
            return request.user.is_staff
        return obj.pk == request.user.pk or services.can_set_password(actor=request.user, target=obj)[0]

    def has_add_permission(self, request):
        return request.user.is_staff

    def has_view_permission(self, request, obj=None):
        return request.user.is_staff

    def has_module_permission(self, request):
        return request.user.is_staff

    def save_model(self, request, obj, form, change):
        new_email = None
        if change and "email" in form.changed_data:
            # The address changes through the service (rules, verification, activity log).
            new_email, obj.email = obj.email, form.initial.get("email") or ""
        if change and "is_staff" in form.changed_data:
            desired = obj.is_staff
            obj.is_staff = not desired
            super().save_model(request, obj, form, change)
            services.user_set_admin(actor=request.user, user=obj, is_admin=desired, request=request)
        else:
            super().save_model(request, obj, form, change)
        if new_email is not None:
            services.user_set_email(actor=request.user, user=obj, email=new_email, request=request)
        if not change:
            services.email_record_initial(user=obj)
            services.activity_log(
                kind=ActivityEvent.Kind.USER_CREATED, user=obj, actor=request.user, request=request, via="admin"
            )

    def delete_model(self, request, obj):
        try:
            services.user_delete(actor=request.user, user=obj, request=request)
        except PermissionDenied as exc:
            messages.error(request, str(exc))

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)

    def user_change_password(self, request, id, form_url=""):
        target = self.get_object(request, id)
        if target is not None:
            allowed, reason = services.can_set_password(actor=request.user, target=target)
            if not allowed:
                raise PermissionDenied(reason)
        response = super().user_change_password(request, id, form_url)
        if request.method == "POST" and response.status_code == 302 and target is not None:
            services.activity_log(
                kind=ActivityEvent.Kind.PASSWORD_CHANGED, user=target, actor=request.user, request=request,
                by_admin=True, via="admin",
            )
        return response


@admin.register(ActivityEvent)
class ActivityEventAdmin(admin.ModelAdmin):
    list_display = ["created_at", "kind", "username", "actor", "ip", "user_agent"]
    list_filter = ["kind", ("created_at", admin.DateFieldListFilter), ("user", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["username", "ip", "user_agent"]
    date_hierarchy = "created_at"
    list_select_related = ["actor"]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False

    def has_view_permission(self, request, obj=None):
        return request.user.is_staff

    def has_module_permission(self, request):
        return request.user.is_staff


@admin.register(ApiToken)
class ApiTokenAdmin(admin.ModelAdmin):
    """Root only: see who holds which token and revoke it. Never the key (not stored) nor its digest."""

    list_display = ["name", "user", "created", "expiry", "last_used_at"]
    list_filter = [("user", admin.RelatedOnlyFieldListFilter)]
    search_fields = ["name", "user__username"]
    fields = ["name", "user", "created", "expiry", "last_used_at"]
    readonly_fields = fields
    list_select_related = ["user"]

    def has_module_permission(self, request):
        return request.user.is_active and request.user.is_superuser

    def has_view_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    def has_delete_permission(self, request, obj=None):
        return request.user.is_active and request.user.is_superuser

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def delete_model(self, request, obj):
        services.token_revoke(actor=request.user, token=obj, request=request)

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)


# --- allauth's e-mail addresses: root's alone (accounts.staff); every change is logged -------------

from allauth.account.admin import EmailAddressAdmin as AllauthEmailAddressAdmin  # noqa: E402
from allauth.account.models import EmailAddress  # noqa: E402

admin.site.unregister(EmailAddress)


@admin.register(EmailAddress)
class EmailAddressAdmin(AllauthEmailAddressAdmin):
    def save_model(self, request, obj, form, change):
        old = form.initial.get("email", "") if change else ""
        super().save_model(request, obj, form, change)
        services.activity_log(
            kind=ActivityEvent.Kind.EMAIL_CHANGED, user=obj.user, actor=request.user, request=request,
            old=old, new=obj.email, verified=obj.verified, primary=obj.primary, via="admin",
        )

    def delete_model(self, request, obj):
        user, email = obj.user, obj.email
        super().delete_model(request, obj)
        services.activity_log(
            kind=ActivityEvent.Kind.EMAIL_REMOVED, user=user, actor=request.user, request=request,
            old=email, via="admin",
        )

    def delete_queryset(self, request, queryset):
        for obj in queryset:
            self.delete_model(request, obj)
