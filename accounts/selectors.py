from django.db.models import Case, IntegerField, QuerySet, Value, When

from accounts.models import ActivityEvent, User


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
