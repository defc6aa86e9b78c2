"""Uploads are written to disk once, straight into NHIS_DATA_DIR/uploads.

Werkzeug's default spools a multipart file part to a temporary file elsewhere, which the view then
copies: a 1 GB upload would be written twice (and land outside the data folder first). The request
class below hands werkzeug a file inside the uploads folder instead; the view renames it into place.
A part left by an interrupted request carries the `.part` suffix and is swept by the purge task.
"""

from __future__ import annotations

import tempfile

from flask import Flask, current_app
from flask.wrappers import Request

PART_PREFIX = ".upload-"
PART_SUFFIX = ".part"


class UploadingRequest(Request):
    def _get_file_stream(self, total_content_length, content_type, filename=None, content_length=None):
        folder = current_app.config["SETTINGS"].data_dir / "uploads"
        folder.mkdir(parents=True, exist_ok=True)
        # mode 0600 (mkstemp): an upload is person-level data
        return tempfile.NamedTemporaryFile("wb+", dir=folder, prefix=PART_PREFIX, suffix=PART_SUFFIX, delete=False)


def init_uploads(app: Flask) -> None:
    app.request_class = UploadingRequest
