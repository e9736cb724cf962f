"""Analyzer writes, one module each:

- `messages`: the chat's event log (`message_add`) and the session's doorbell group;
- `sessions`: a session from an upload, its title, its deletion;
- `processing`: the processing job of an upload (the load into DuckDB, its progress and cancel);
- `answers`: answers (agent jobs): asking, the agent loop's body, stopping.
"""

from analyzer.selectors import processing_error, session_processing, session_status  # noqa: F401  (reads)
from analyzer.services.answers import (  # noqa: F401
    AnswerSink,
    answer_close_lost,
    answer_request,
    answer_run,
    answer_stop,
    message_max_bytes,
    provider_for,
    session_not_ready_message,
)
from analyzer.services.messages import message_add  # noqa: F401
from analyzer.services.processing import (  # noqa: F401
    ProcessingProgress,
    processing_after_run,
    processing_cancel,
    processing_cleanup,
    processing_close_lost,
    processing_fail,
    processing_run,
)
from analyzer.services.sessions import (  # noqa: F401
    ACTIVE,
    session_create_from_upload,
    session_data_path,
    session_delete,
    session_files_remove,
    session_title_set,
)
