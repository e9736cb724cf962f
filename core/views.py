from django.contrib.auth.decorators import login_required
from django.http import HttpResponse
from django.templatetags.static import static
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from core import selectors, services
from core.consumers import WorkerCheckStream
from core.permissions import staff_required


@login_required
def dashboard(request):
    jobs = selectors.recent_jobs(user=request.user, limit=25)
    template = "core/dashboard.html#jobs" if request.htmx else "core/dashboard.html"
    counts = sorted(selectors.job_counts(user=request.user).items(), key=lambda item: -item[1])
    return render(request, template, {"jobs": jobs, "counts": counts})


@staff_required
def health(request):
    check = selectors.worker_check_latest(user=request.user)
    return render(request, "core/health.html", {"health": selectors.health_status(), "check": check,
                                                "ws_path": WorkerCheckStream.path(check.pk) if check else ""})


@staff_required
@require_POST
def worker_check_start(request):
    services.worker_check_create(user=request.user)
    return redirect("core:health")


@require_GET
@require_GET
def healthz(request):
    """Liveness for load balancers: the process answers. Unauthenticated, so it says nothing else, and
    touches neither the database nor the broker (`/api/health/` reports those, signed in)."""
    response = HttpResponse("ok", content_type="text/plain")
    response["Cache-Control"] = "no-store"
    return response


def favicon(request):
    """The platform's icon for pages that do not name one (the admin's and the API docs'); browsers cache it."""
    response = redirect(static("core/favicon.svg"))
    response["Cache-Control"] = "public, max-age=86400"
    return response
