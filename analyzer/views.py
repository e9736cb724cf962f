"""Pages: upload + history (index), one session (file, preview, profile, chat), delete, CSV download."""

import json

from django.contrib import messages
from django.core.serializers.json import DjangoJSONEncoder
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import JsonResponse
from django.middleware.csrf import CsrfViewMiddleware
from django.shortcuts import redirect, render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_POST

from analyzer import conf, selectors, services
from analyzer.agent.providers import analysts_available
from analyzer.serializers import upload_too_large
from analyzer.uploads import TOO_LARGE_ATTR, install_size_limit, too_large_message
from analyzer.views_common import query_result_csv_response, session_detail_payload, upload_payload


def _wants_json(request) -> bool:
    return "application/json" in request.headers.get("Accept", "")


def _index_context(request, **extra) -> dict:
    return {
        "sessions": selectors.session_list(user=request.user)[:200],
        "max_upload_bytes": conf.MAX_UPLOAD_BYTES,
        **extra,
    }


@login_required
@require_GET
def index(request):
    # HTMX refreshes only the history list; the full page includes the same fragment.
    template = "analyzer/partials/history.html" if request.htmx else "analyzer/index.html"
    return render(request, template, _index_context(request))


@csrf_exempt  # checked below, after the size-limiting upload handler is installed
@login_required
@require_POST
def upload(request):
    too_large = upload_too_large(request.META.get("CONTENT_LENGTH"))
    error = None
    if too_large:
        error = too_large
    else:
        install_size_limit(request)
        rejected = CsrfViewMiddleware(lambda r: None).process_view(request, None, (), {})
        if rejected is not None:
            return rejected
        if getattr(request, TOO_LARGE_ATTR, False):
            error = too_large_message()
        elif "file" not in request.FILES:
            error = "Choose a file to upload."
    if error is None:
        try:
            session = services.session_create_from_upload(owner=request.user, upload=request.FILES["file"])
        except ValidationError as exc:
            error = " ".join(exc.message_dict.get("file", exc.messages)) if hasattr(exc, "error_dict") else \
                " ".join(exc.messages)
        else:
            # The file is stored and its processing queued: go to the session page, which shows the
            # progress live. 202, as in the API: the processing has only been queued.
            if _wants_json(request):
                return JsonResponse(json.loads(json.dumps(upload_payload(session=session), cls=DjangoJSONEncoder)),
                                    status=202)
            return redirect(session.get_absolute_url())
    if _wants_json(request):
        return JsonResponse({"file": [error]}, status=413 if error == too_large or error == too_large_message()
                            else 400)
    return render(request, "analyzer/index.html", _index_context(request, upload_error=error), status=400)


@login_required
@require_GET
def session_detail(request, pk: int):
    session = selectors.session_get(user=request.user, pk=pk)
    payload = session_detail_payload(session=session)
    context = {
        "session": session,
        "file": payload["file"],
        "status": payload["status"],
        "error": payload["error"],
        "processing": payload["processing"],
    }
    if request.htmx and request.GET.get("part") == "file":
        # Swapped in by the page when the processing job ends (file info, preview, profile or the error).
        return render(request, "analyzer/partials/session_file.html", context)
    context["client"] = {
        "id": session.pk,
        "title": session.title,
        "status": payload["status"],
        "running": payload["running"],
        "websocket": payload["websocket"],
        "messages": payload["messages"],
        "result_csv_url": f"/analyzer/sessions/{session.pk}/results/",
        # Token usage of each LLM answer, for staff only.
        "usage": selectors.session_answers_usage(session=session) if request.user.is_staff else {},
    }
    context["analysts"] = analysts_available()
    context["asked"] = any(m["event"] == "user" for m in payload["messages"])
    context["processing_client"] = {
        "status": payload["status"],
        "websocket": payload["processing"]["websocket"] if payload["processing"] else "",
        "file_url": f"{session.get_absolute_url()}?part=file",
    }
    return render(request, "analyzer/session_detail.html", context)


@login_required
@require_POST
def session_delete(request, pk: int):
    session = selectors.session_get(user=request.user, pk=pk)
    title = session.title
    services.session_delete(session=session)
    messages.success(request, f"Deleted “{title}”.")
    return redirect("analyzer:index")


@login_required
@require_GET
def result_csv(request, pk: int, message_id: int):
    session = selectors.session_get(user=request.user, pk=pk)
    return query_result_csv_response(session=session, message_id=message_id)
