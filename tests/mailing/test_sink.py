import smtplib
import socket

from mailing.sink import sink_controller, sink_messages


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_sink_keeps_every_message_with_envelope(tmp_path):
    port = _free_port()
    controller = sink_controller(directory=tmp_path / "box", port=port)
    controller.start()
    try:
        with smtplib.SMTP("127.0.0.1", port) as smtp:
            for n in range(2):
                smtp.sendmail("facturation@tilleuls.example", ["famille@example.org", "tuteur@example.org"],
                              f"Subject: Facture {n}\r\nDate: Wed, 25 Nov 2026 10:0{n}:00 +0100\r\n\r\nBonjour".encode())
    finally:
        controller.stop()
    messages = sink_messages(tmp_path / "box")
    assert [m["Subject"] for m in messages] == ["Facture 0", "Facture 1"]
    assert messages[0]["X-RcptTo"] == "famille@example.org, tuteur@example.org"
    assert messages[0]["X-MailFrom"] == "facturation@tilleuls.example"
