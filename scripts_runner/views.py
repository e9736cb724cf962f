"""HTML pages (HTMX): thin, every rule is in services/selectors."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexers import PythonLexer

from scripts_runner import conf, selectors, services
from core.permissions import staff_required
from scripts_runner.consumers import RunLogStream
from scripts_runner.forms import CodeForm, RunForm, UploadForm
from scripts_runner.models import LogChunk

TAIL_LINES = 2000


def _add_errors(form, exc: ValidationError) -> None:
    if hasattr(exc, "error_dict"):
        for field, errors in exc.message_dict.items():
            form.add_error(field if field in form.fields else None, errors)
    else:
        form.add_error(None, exc.messages)


def _script_or_404(request, pk):
    script = selectors.script_get(user=request.user, pk=pk)
    if script is None:
        raise Http404("Not found.")
    return script


def _run_or_404(request, pk):
    run = selectors.run_get_for_viewer(user=request.user, pk=pk)
    if run is None:
        raise Http404("Not found.")
    return run


@login_required
def index(request):
    upload_form, code_form = UploadForm(), CodeForm(initial={"name": "script.py", "code": "print('hello')\n"})
    if request.method == "POST":
        if request.POST.get("form") == "paste":
            code_form = CodeForm(request.POST)
            if code_form.is_valid():
                try:
                    script = services.script_create(owner=request.user, name=code_form.cleaned_data["name"],
                                                    code=code_form.cleaned_data["code"].encode("utf-8"))
                    messages.success(request, f"Saved {script.name}.")
                    return redirect(script)
                except ValidationError as exc:
                    if "file" in getattr(exc, "error_dict", {}):
                        exc = ValidationError({"code": exc.error_dict["file"]})
                    _add_errors(code_form, exc)
        else:
            upload_form = UploadForm(request.POST, request.FILES)
            if upload_form.is_valid():
                upload = upload_form.cleaned_data["file"]
                try:
                    script = services.script_create(owner=request.user,
                                                    name=upload_form.cleaned_data["name"] or upload.name,
                                                    code=upload.read())
                    messages.success(request, f"Uploaded {script.name}.")
                    return redirect(script)
                except ValidationError as exc:
                    _add_errors(upload_form, exc)
    scripts = selectors.script_list(user=request.user)
    context = {
        "scripts": scripts,
        "upload_form": upload_form,
        "code_form": code_form,
        "can_run": services.can_run(request.user),
        "max_kb": conf.MAX_SCRIPT_BYTES // 1024,
    }
    if request.htmx and request.method == "GET":
        return render(request, "scripts_runner/partials/script_table.html", context)
    return render(request, "scripts_runner/index.html", context, status=400 if request.method == "POST" else 200)


@login_required
def script_detail(request, pk):
    script = _script_or_404(request, pk)
    code = selectors.script_code(script=script)
    code_form = CodeForm(initial={"name": script.name, "code": code or ""})
    run_form = RunForm()
    status = 200
    if request.method == "POST":
        code_form = CodeForm(request.POST)
        status = 400
        if code_form.is_valid():
            try:
                services.script_update(script=script, code=code_form.cleaned_data["code"].encode("utf-8"),
                                       name=code_form.cleaned_data["name"])
                messages.success(request, "Saved.")
                return redirect(script)
            except ValidationError as exc:
                if "file" in getattr(exc, "error_dict", {}):
                    exc = ValidationError({"code": exc.error_dict["file"]})
                _add_errors(code_form, exc)
    runs = selectors.run_list(user=request.user, script=script).filter(owner=script.owner)[:50]
    sandbox_ok, sandbox_error = services.sandbox_status()
    context = {
        "script": script,
        "code_missing": selectors.CODE_MISSING_MESSAGE if code is None else "",
        "highlighted": "" if code is None else highlight(code, PythonLexer(), HtmlFormatter(linenos="table", cssclass="highlight")),
        "code_form": code_form,
        "run_form": run_form,
        "runs": runs,
        "can_run": services.can_run(request.user),
        "can_use_network": services.can_use_network(request.user),
        "sandbox_error": sandbox_error,
    }
    if request.htmx and request.method == "GET":
        return render(request, "scripts_runner/partials/run_table.html", context)
    return render(request, "scripts_runner/script_detail.html", context, status=status)


@login_required
@require_POST
def script_run(request, pk):
    script = _script_or_404(request, pk)
    form = RunForm(request.POST)
    error = ""
    if form.is_valid():
        try:
            from scripts_runner.validators import parse_args_text, parse_env_text

            run = services.script_run_create(
                script=script, user=request.user,
                args=parse_args_text(form.cleaned_data["args"]), env=parse_env_text(form.cleaned_data["env"]),
                network=form.cleaned_data["network"],
            )
            return redirect(run)
        except ValidationError as exc:
            error = " ".join(exc.messages)
        except PermissionDenied as exc:
            error = str(exc)
    else:
        error = " ".join(f"{k}: {' '.join(v)}" for k, v in form.errors.items())
    messages.error(request, error)
    return redirect(script)


@login_required
@require_POST
def script_delete(request, pk):
    script = _script_or_404(request, pk)
    name = script.name
    services.script_delete(script=script, by=request.user)
    messages.success(request, f"Deleted {name} with its runs and logs.")
    return redirect("scripts_runner:index")


def _log_tail(run) -> tuple[list[dict], int, bool]:
    """The last lines of a run's log for the first render; (lines, last seq, earlier lines exist)."""
    chunks = []
    count = 0
    for chunk in LogChunk.objects.filter(run=run).order_by("-seq").iterator(chunk_size=100):
        chunks.append(chunk)
        count += chunk.line_count
        if count >= TAIL_LINES:
            break
    chunks.reverse()
    lines = [
        {"stream": c.stream, "no": c.first_line + i, "text": text}
        for c in chunks for i, text in enumerate(c.lines())
    ]
    earlier = bool(chunks) and chunks[0].first_line > 1
    return lines, (chunks[-1].seq if chunks else 0), earlier


@login_required
def run_detail(request, pk):
    run = _run_or_404(request, pk)
    if request.htmx:
        return render(request, "scripts_runner/partials/run_status.html", {"run": run},
                      status=286 if run.is_finished else 200)
    lines, last_seq, earlier = _log_tail(run)
    return render(request, "scripts_runner/run_detail.html",
                  {"run": run, "lines": lines, "last_seq": last_seq, "earlier": earlier,
                   "ws_path": RunLogStream.path(run.pk)})


@login_required
@require_POST
def run_cancel(request, pk):
    run = _run_or_404(request, pk)
    services.script_run_cancel(run=run, by=request.user)
    if request.htmx:
        return render(request, "scripts_runner/partials/run_status.html", {"run": run})
    messages.info(request, "Stop requested.")
    return redirect(request.POST.get("next") if request.POST.get("next", "").startswith("/") else run)


@login_required
def run_log(request, pk):
    run = _run_or_404(request, pk)
    response = StreamingHttpResponse(selectors.log_text(run=run), content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="run-{run.pk}.log"'
    return response


@login_required
def run_list(request):
    runs = selectors.run_list(user=request.user)
    page = Paginator(runs, 50).get_page(request.GET.get("page"))
    return render(request, "scripts_runner/run_list.html", {"page": page})


@staff_required
def access(request):
    if request.method == "POST":
        raw = request.POST.get("user", "")
        user = get_user_model().objects.filter(pk=int(raw)).first() if raw.isdigit() else None
        if user is None:
            messages.error(request, "Unknown user.")
        else:
            # Root always may run scripts (no box to tick); network is an explicit grant for everyone.
            services.script_access_set(user=user, run=None if user.is_superuser else request.POST.get("run") == "on",
                                network=request.POST.get("network") == "on")
            messages.success(request, f"Updated permissions of {user.username}.")
        return redirect("scripts_runner:access")
    users = services.script_access_table()
    return render(request, "scripts_runner/access.html", {"users": users})
