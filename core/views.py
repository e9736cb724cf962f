from django.contrib.auth.decorators import login_required
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from core import selectors, services


@login_required
def dashboard(request):
    jobs = selectors.recent_jobs(user=request.user, limit=25)
    template = "core/dashboard.html#jobs" if request.htmx else "core/dashboard.html"
    counts = sorted(selectors.job_counts(user=request.user).items(), key=lambda item: -item[1])
    return render(request, template, {"jobs": jobs, "counts": counts})


@staff_member_required
def health(request):
    return render(request, "core/health.html", {"health": selectors.health_status(),
                                                "check": selectors.worker_check_latest(user=request.user)})


@staff_member_required
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
    """No icon: an empty answer browsers cache, instead of a 404 on every page (the admin's and API docs' too)."""
    response = HttpResponse(status=204)
    response["Cache-Control"] = "public, max-age=86400"
    return response
