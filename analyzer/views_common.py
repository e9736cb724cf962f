"""Pieces shared by the pages and the API (payloads and downloads), kept out of both."""

import csv
import io

from django.http import StreamingHttpResponse
from django.urls import reverse

from analyzer import selectors
from analyzer.consumers import SessionChatStream


def session_detail_payload(*, session) -> dict:
    state = selectors.session_processing_info(session=session)
    return {
        "id": session.pk,
        "title": session.title,
        "created_at": session.created_at,
        "url": session.get_absolute_url(),
        "status": state["status"],
        "error": state["error"],
        "processing": state["job"],
        "websocket": SessionChatStream.path(session.pk),
        "running": selectors.session_running_answer(session=session) is not None,
        "file": selectors.session_file_info(session=session),
        "messages": selectors.session_messages(session=session),
    }


def upload_payload(*, session) -> dict:
    """What an upload answers (API 202, page XHR): the session, its state and its processing job."""
    state = selectors.session_processing_info(session=session)
    return {
        "session_id": session.pk,
        "url": session.get_absolute_url(),
        "status": state["status"],
        "error": state["error"],
        "websocket": SessionChatStream.path(session.pk),
        "processing": state["job"],
        "file": selectors.session_file_info(session=session),
    }


def _csv_lines(columns: list[str], rows: list[dict]):
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(columns)
    for i, row in enumerate(rows):
        writer.writerow(["" if row.get(c) is None else row.get(c) for c in columns])
        if i % 500 == 499:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


def query_result_csv_response(*, session, message_id) -> StreamingHttpResponse:
    message = selectors.message_with_rows(session=session, message_id=message_id)
    rows = message.rows_kept or message.data.get("result") or []
    columns = [c["name"] for c in message.data.get("columns") or []] or (list(rows[0]) if rows else [])
    response = StreamingHttpResponse(_csv_lines(columns, rows), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="session-{session.pk}-result-{message.pk}.csv"'
    return response


def result_csv_url(*, session_id: int, message_id: int) -> str:
    return reverse("analyzer:result_csv", args=[session_id, message_id])
