from django.conf import settings
from django.shortcuts import render
from django.urls import reverse


def staff_needs_two_factor(user) -> bool:
    """True when PLATFORM_STAFF_REQUIRE_MFA is on and this staff member has no authenticator enrolled."""
    if not (settings.PLATFORM_STAFF_REQUIRE_MFA and user.is_authenticated and user.is_staff):
        return False
    from allauth.mfa.utils import is_mfa_enabled

    return not is_mfa_enabled(user)


class StaffTwoFactorMiddleware:
    """With PLATFORM_STAFF_REQUIRE_MFA on, the Django admin refuses staff without two-factor authentication."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.path.startswith(reverse("admin:index")) and staff_needs_two_factor(request.user):
            return render(request, "accounts/two_factor_required.html", status=403)
        return self.get_response(request)
