import secrets

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError, CommandParser


class Command(BaseCommand):
    help = (
        "Create a superuser when none exists. Credentials come from DJANGO_SUPERUSER_USERNAME, "
        "DJANGO_SUPERUSER_PASSWORD and DJANGO_SUPERUSER_EMAIL; a missing password is generated "
        "and printed once."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--quiet", action="store_true", help="Print nothing when one exists.")

    def handle(self, *args: object, **options: object) -> None:
        user_model = get_user_model()
        if user_model.objects.filter(is_superuser=True).exists():
            if not options["quiet"]:
                self.stdout.write("A superuser already exists; nothing to do.")
            return
        username = settings.SUPERUSER_USERNAME
        if user_model.objects.filter(username=username).exists():
            raise CommandError(
                f"A user named {username!r} exists but is not a superuser; set "
                "DJANGO_SUPERUSER_USERNAME to another name."
            )
        password = settings.SUPERUSER_PASSWORD
        generated = not password
        if generated:
            password = secrets.token_urlsafe(12)
        user_model.objects.create_superuser(
            username=username, email=settings.SUPERUSER_EMAIL, password=password
        )
        if generated:
            banner = "=" * 60
            self.stdout.write(
                self.style.WARNING(
                    f"{banner}\nCreated superuser {username!r} with password {password}\n"
                    f"This password is shown only now.\n{banner}"
                )
            )
        else:
            self.stdout.write(self.style.SUCCESS(f"Created superuser {username!r}."))
