from django.db.models import Case, IntegerField, QuerySet, Value, When

from accounts.models import ActivityEvent, ApiToken, User


def user_list(*, actor) -> QuerySet[User]:
    """Yourself first, then root, admins, users; by id within each group."""
    return User.objects.annotate(
        rank=Case(
            When(pk=actor.pk, then=Value(0)),
            When(is_superuser=True, then=Value(1)),
            When(is_staff=True, then=Value(2)),
            default=Value(3),
            output_field=IntegerField(),
        )
    ).order_by("rank", "pk")


def activity_for(*, user, limit: int = 50) -> QuerySet[ActivityEvent]:
    return ActivityEvent.objects.filter(user=user)[:limit]


def token_list(*, user) -> QuerySet[ApiToken]:
    """The user's API tokens, newest first (expired ones included, marked by their expiry)."""
    return ApiToken.objects.filter(user=user).order_by("-created", "-id")


def token_get_for_owner(*, user, pk) -> ApiToken | None:
    """One of the user's own tokens; someone else's is None, like an unknown id."""
    try:
        pk = int(pk)
    except (TypeError, ValueError):
        return None
    if not 0 < pk < 2**63:  # beyond any id (and PostgreSQL's bigint)
        return None
    return ApiToken.objects.filter(user=user, pk=pk).select_related("user").first()


def user_for_login(*, login: str) -> User | None:
    """The account a login form's "username or e-mail" names: by username (case-insensitively), else by
    any of its e-mail addresses (the user's own field or an allauth address). None when it names nobody."""
    from allauth.account.models import EmailAddress
    from django.db.models import Q

    user = User.objects.filter(username__iexact=login).first()
    if user is None and "@" in login:
        owner = EmailAddress.objects.filter(email__iexact=login).values_list("user_id", flat=True).first()
        user = User.objects.filter(Q(pk=owner) | Q(email__iexact=login)).order_by("pk").first()
    return user
