class StaffPermissionsBackend:
    """Admins (staff) hold every model permission in the Django admin.

    The platform has three roles, not per-model permissions; the rules that
    restrict admins (deleting other admins, changing roles…) live in
    accounts.services and the ModelAdmins that call them.
    """

    def authenticate(self, request, **credentials):
        return None

    def has_perm(self, user_obj, perm, obj=None):
        return bool(user_obj.is_active and user_obj.is_staff)

    def has_module_perms(self, user_obj, app_label):
        return bool(user_obj.is_active and user_obj.is_staff)
