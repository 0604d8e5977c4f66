"""Serve: the published model over the web.

Modules: `service` (the FastAPI service, `python -m ecg_utils.serve.service`), `uploads` (uploaded files taken in
safely), `app` (the Streamlit app, `streamlit run ecg_utils/serve/app.py`) and `strip` (its ECG strip), `client`
(the service's client), `loadtest` (load for `make bench`). Sits beside `evaluate`, never imported by it.
"""
