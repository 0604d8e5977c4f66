"""The app is started with the service's upload limit and in viewer mode; a bad limit is named, not a traceback."""

from ecg_utils.serve.launch import app_command, main


def test_the_app_takes_the_services_upload_limit(monkeypatch):
    monkeypatch.setenv("ECG_MAX_UPLOAD_MB", "300.5")
    cmd = app_command(8502)
    assert cmd[cmd.index("--server.maxUploadSize") + 1] == "301"  # Streamlit takes whole MB: never below the service
    assert cmd[cmd.index("--client.toolbarMode") + 1] == "viewer" and cmd[cmd.index("--server.port") + 1] == "8502"
    monkeypatch.delenv("ECG_MAX_UPLOAD_MB")
    assert app_command(8502)[cmd.index("--server.maxUploadSize") + 1] == "256"


def test_a_bad_limit_is_named(monkeypatch, capsys):
    monkeypatch.setenv("ECG_MAX_UPLOAD_MB", "lots")
    assert main(["--port", "8502"]) == 2
    assert "ECG_MAX_UPLOAD_MB='lots' is not a number" in capsys.readouterr().err
    monkeypatch.setenv("ECG_MAX_UPLOAD_MB", "0")
    assert main([]) == 2
