import signal
import threading
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand

from mailing.sink import sink_controller


class Command(BaseCommand):
    help = "Serveur SMTP local qui conserve chaque message reçu (démonstration, tests)."

    def add_arguments(self, parser):
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=1025)
        parser.add_argument("--dir", default=str(settings.MAILSINK_DIR))

    def handle(self, *args, **options):
        directory = Path(options["dir"])
        controller = sink_controller(directory=directory, host=options["host"], port=options["port"])
        controller.start()
        self.stdout.write(f"Serveur SMTP local sur {options['host']}:{options['port']}, messages dans {directory}")
        stop = threading.Event()
        signal.signal(signal.SIGTERM, lambda *a: stop.set())
        try:
            stop.wait()
        except KeyboardInterrupt:
            pass
        finally:
            controller.stop()
