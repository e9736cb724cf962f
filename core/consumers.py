"""The worker check's live stream: `/ws/core/worker-checks/<id>/?after=SEQ` (core.streams.JobStream)."""

from core import selectors
from core.streams import JobStream


class WorkerCheckStream(JobStream):
    app, kind = "core", "worker-checks"

    def load(self, user, pk):
        return selectors.worker_check_get_for_viewer(user=user, pk=pk)
