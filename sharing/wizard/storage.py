"""The wizard's session storage: the session is written only when a run changed.

formtools' SessionStorage marks the session modified whenever its data is read,
so every GET of a step rewrote the session row. This one compares the run's
data at the end of the request with what it was at the start and marks the
session modified only when they differ (a step stored, the current step moved,
a draft kept, the run reset), however the change was made (in-place edits of
``extra_data`` included).
"""

import json

from formtools.wizard.storage.session import SessionStorage


def _snapshot(value):
    return json.dumps(value, sort_keys=True, default=str)


class ChangedOnlySessionStorage(SessionStorage):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._saved = _snapshot(self.request.session.get(self.prefix))

    def _get_data(self):
        return self.request.session[self.prefix]

    data = property(_get_data, SessionStorage._set_data)

    def mark_if_changed(self):
        """Mark the session modified if the run's data changed since it was read."""
        now = _snapshot(self.request.session.get(self.prefix))
        if now != self._saved:
            self.request.session.modified = True
            self._saved = now

    def update_response(self, response):
        super().update_response(response)
        self.mark_if_changed()
