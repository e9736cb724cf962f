from django.contrib.auth.decorators import login_required
from django.contrib.admin.views.decorators import staff_member_required
from django.http import HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_GET, require_POST

from core import selectors, services
from core.models import WorkerCheck


@login_required
def dashboard(request):
    jobs = selectors.recent_jobs(user=request.user, limit=25)
    template = "core/dashboard.html#jobs" if request.htmx else "core/dashboard.html"
    return render(request, template, {"jobs": jobs, "counts": selectors.job_counts(user=request.user)})


@staff_member_required
def health(request):
    checks = WorkerCheck.objects.filter(owner=request.user).order_by("-created_at")[:1]
    return render(request, "core/health.html", {"health": selectors.health_status(), "check": checks[0] if checks else None})


@staff_member_required
@require_POST
def worker_check_start(request):
    job = WorkerCheck(owner=request.user, steps=5, interval_ms=200)
    job.full_clean()
    job.save()
    services.job_enqueue(job=job)
    return redirect("core:health")


@require_GET
def favicon(request):
    """No icon: an empty answer browsers cache, instead of a 404 on every page (the admin's and API docs' too)."""
    response = HttpResponse(status=204)
    response["Cache-Control"] = "public, max-age=86400"
    return response
