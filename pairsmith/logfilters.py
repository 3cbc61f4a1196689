"""Logging filters named by settings.LOGGING."""

import logging


class ClientErrorsWithoutTraceback(logging.Filter):
    """A 4xx is the client's doing (a 403 for a role the user lacks, a 404): log one line, not a traceback.

    Django's request logger attaches the exception to every 4xx it logs; a server error (5xx) keeps its traceback.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if getattr(record, "status_code", 500) < 500:
            record.exc_info = None
            record.exc_text = None
        return True
