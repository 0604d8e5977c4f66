"""The service's error messages in the app's own terms: the service names its form fields, the app its controls."""

from __future__ import annotations

#: The service's advice in terms of its form fields, and the same advice in terms of this page's controls.
APP_WORDING = {"send the field 'lead' with one of them": "choose one of them in the 'lead' list",
               "send the field fs (Hz)": "set 'sampling rate for CSV (Hz)'",
               "(.csv with the field fs)": "(.csv, with its sampling rate set below)"}


def in_app_terms(message: str) -> str:
    """`message` with the service's advice replaced by what to do on the app's page."""
    for service, app in APP_WORDING.items():
        message = message.replace(service, app)
    return message
