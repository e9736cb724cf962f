from accounts.staff import STAFF_APP_LABELS, STAFF_PERMISSIONS, is_admin


class StaffPermissionsBackend:
    """Admins (staff) hold the permissions listed in accounts.staff, and no other.

    Root keeps every permission through ModelBackend (is_superuser). The rules
    that restrict admins further (deleting other admins, changing roles…) live
    in accounts.services and the ModelAdmins that call them.
    """

    def authenticate(self, request, **credentials):
        return None

    def get_all_permissions(self, user_obj, obj=None):
        return set(STAFF_PERMISSIONS) if is_admin(user_obj) else set()

    def has_perm(self, user_obj, perm, obj=None):
        return is_admin(user_obj) and perm in STAFF_PERMISSIONS

    def has_module_perms(self, user_obj, app_label):
        return is_admin(user_obj) and app_label in STAFF_APP_LABELS
