from allauth.account.adapter import DefaultAccountAdapter
from allauth.socialaccount.adapter import DefaultSocialAccountAdapter
from django.conf import settings
from django.core.exceptions import ValidationError

from accounts.models import ActivityEvent


class AccountAdapter(DefaultAccountAdapter):
    def is_open_for_signup(self, request):
        return settings.ACCOUNT_ALLOW_SIGNUP

    def send_password_reset_mail(self, user, email, context):
        """A reset link only goes to an address of that user that is verified (set by root, given at
        creation, or confirmed by the user); never to one somebody else added."""
        from allauth.account.models import EmailAddress

        from accounts.services import activity_log

        if not EmailAddress.objects.filter(user=user, email__iexact=email, verified=True).exists():
            activity_log(
                kind=ActivityEvent.Kind.PASSWORD_RESET_REFUSED, user=user, request=context.get("request"),
                email=email,
            )
            return
        super().send_password_reset_mail(user, email, context)

    def _get_login_attempts_cache_key(self, request, **credentials):
        """The account the failed logins count against, whatever names it and whatever host was asked.

        allauth keys its per-account limit by the request's site and the login as typed; without the
        sites framework the site is the Host header, port included, so alternating hosts or ports never
        locked an account, and a username and an e-mail address of one account were two budgets. Here a
        login that names an account (by username or by any of its e-mail addresses) is keyed by that
        account's id; one that names nobody is keyed by the login itself, lower-cased. The per-IP limit
        is allauth's own and separate.
        """
        from accounts.selectors import user_for_login

        login = (credentials.get("email") or credentials.get("username") or "").strip().lower()
        user = user_for_login(login=login) if login else None
        return f"account:{user.pk}" if user is not None else f"login:{login}"

    def pre_authenticate(self, request, **credentials):
        try:
            super().pre_authenticate(request, **credentials)
        except ValidationError:
            from accounts.services import activity_log

            activity_log(
                kind=ActivityEvent.Kind.LOCKOUT,
                username=credentials.get("username") or credentials.get("email") or "",
                request=request,
            )
            raise


class SocialAccountAdapter(DefaultSocialAccountAdapter):
    def is_open_for_signup(self, request, sociallogin):
        return settings.ACCOUNT_ALLOW_SIGNUP
