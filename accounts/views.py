from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.shortcuts import get_object_or_404, render
from django.utils import timezone
from django.views.decorators.http import require_http_methods, require_POST

from accounts import selectors, services
from core.permissions import staff_required
from accounts.forms import SetPasswordForm, UserCreateForm
from accounts.models import User


def _rows(request):
    rows = []
    for target in selectors.user_list(actor=request.user):
        rows.append(
            {
                "user": target,
                "is_self": target.pk == request.user.pk,
                "can_delete": services.can_delete(actor=request.user, target=target)[0],
                "can_set_password": services.can_set_password(actor=request.user, target=target)[0],
                "can_set_email": services.can_set_email(actor=request.user, target=target)[0],
                "can_set_admin": services.can_set_admin(actor=request.user, target=target)[0]
                and target.pk != request.user.pk,
            }
        )
    return rows


def _page(request, *, form=None, status=200, notice="", error=""):
    context = {
        "rows": _rows(request),
        "form": form or UserCreateForm(),
        "can_grant_admin": request.user.is_superuser,
        "notice": notice,
        "error": error,
    }
    template = "accounts/user_list.html#panel" if request.htmx else "accounts/user_list.html"
    return render(request, template, context, status=status)


@staff_required
def user_list(request):
    return _page(request)


@staff_required
@require_POST
def user_create(request):
    form = UserCreateForm(request.POST)
    if form.is_valid():
        try:
            user = services.user_create(actor=request.user, request=request, **form.cleaned_data)
        except ValidationError as exc:
            _add_errors(form, exc.message_dict)
        except PermissionDenied as exc:
            form.add_error("is_admin", str(exc))
        else:
            return _page(request, notice=f"User {user.username} created.")
    else:
        # The form's own checks failed; the service's (name taken, weak password …) are shown in the same round.
        values = {name: form.cleaned_data.get(name, request.POST.get(name, "")) for name in ("username", "email")}
        candidate = User(username=str(values["username"]).strip(), email=str(values["email"]).strip())
        problems = services.user_create_problems(user=candidate, password=request.POST.get("password", ""))
        _add_errors(form, {field: messages for field, messages in problems.items() if field not in form.errors})
    return _page(request, form=form, status=200 if request.htmx else 400)


def _add_errors(form, errors: dict[str, list[str]]) -> None:
    for field, messages in errors.items():
        for message in messages:
            form.add_error(field if field in form.fields else None, message)


@staff_required
@require_http_methods(["POST", "DELETE"])
def user_delete(request, pk: int):
    target = get_object_or_404(User, pk=pk)
    try:
        services.user_delete(actor=request.user, user=target, request=request)
    except PermissionDenied as exc:
        return _page(request, error=str(exc), status=200 if request.htmx else 403)
    return _page(request, notice=f"User {target.username} deleted.")


@staff_required
@require_POST
def user_password(request, pk: int):
    target = get_object_or_404(User, pk=pk)
    form = SetPasswordForm(request.POST)
    if not form.is_valid():
        return _page(request, error="Enter a new password.", status=200 if request.htmx else 400)
    try:
        services.user_set_password(
            actor=request.user, user=target, password=form.cleaned_data["new_password"], request=request
        )
    except PermissionDenied as exc:
        return _page(request, error=str(exc), status=200 if request.htmx else 403)
    except ValidationError as exc:
        message = " ".join(exc.message_dict.get("password", exc.messages))
        return _page(request, error=f"Password for {target.username} not changed: {message}",
                     status=200 if request.htmx else 400)
    return _page(request, notice=f"Password of {target.username} changed.")


@staff_required
@require_POST
def user_email(request, pk: int):
    target = get_object_or_404(User, pk=pk)
    try:
        services.user_set_email(actor=request.user, user=target, email=request.POST.get("email", ""), request=request)
    except PermissionDenied as exc:
        return _page(request, error=str(exc), status=200 if request.htmx else 403)
    except ValidationError as exc:
        message = " ".join(exc.message_dict.get("email", exc.messages))
        return _page(request, error=f"E-mail address of {target.username} not changed: {message}",
                     status=200 if request.htmx else 400)
    target.refresh_from_db()
    return _page(request, notice=f"E-mail address of {target.username} is now {target.email}.")


@staff_required
@require_POST
def user_role(request, pk: int):
    target = get_object_or_404(User, pk=pk)
    try:
        services.user_set_admin(
            actor=request.user, user=target, is_admin=request.POST.get("is_admin") == "true", request=request
        )
    except PermissionDenied as exc:
        return _page(request, error=str(exc), status=200 if request.htmx else 403)
    return _page(request, notice=f"{target.username} is now {target.role_label.lower()}.")


def _tokens_page(request, *, status=200, notice="", error="", new_token=None, new_key="", form_name=""):
    context = {
        "tokens": selectors.token_list(user=request.user),
        "lifetimes": services.token_lifetime_choices(),
        "default_days": settings.API_TOKEN_DEFAULT_DAYS,
        "now": timezone.now(),
        "notice": notice,
        "error": error,
        "new_token": new_token,
        "new_key": new_key,
        "form_name": form_name,
    }
    template = "accounts/token.html#panel" if request.htmx else "accounts/token.html"
    response = render(request, template, context, status=status)
    if new_key:
        response["Cache-Control"] = "no-store"  # the only page that ever shows the key
    return response


@login_required
@require_http_methods(["GET", "POST"])
def tokens(request):
    if request.method == "GET":
        return _tokens_page(request)
    name = request.POST.get("name", "")
    try:
        days = int(request.POST.get("days") or settings.API_TOKEN_DEFAULT_DAYS)
    except ValueError:
        days = 0  # refused by the service with the allowed range
    try:
        token, key = services.token_create(user=request.user, name=name, days=days, request=request)
    except ValidationError as exc:
        message = " ".join(m for messages in exc.message_dict.values() for m in messages)
        return _tokens_page(request, error=message, form_name=name[:100], status=200 if request.htmx else 400)
    return _tokens_page(request, notice=f"Token “{token.name}” created.", new_token=token, new_key=key)


@login_required
@require_POST
def token_revoke(request, pk: int):
    token = selectors.token_get_for_owner(user=request.user, pk=pk)
    if token is None:
        return _tokens_page(request, error="No token of yours has this id.", status=200 if request.htmx else 404)
    services.token_revoke(actor=request.user, token=token, request=request)
    return _tokens_page(request, notice=f"Token “{token.name}” revoked.")
