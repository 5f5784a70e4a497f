from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError, CommandParser

from history.services import api_key_create


class Command(BaseCommand):
    help = "Create an API key for a user and print it once (the key itself is never stored)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("username")
        parser.add_argument("--name", default="command line", help="A name to recognise it by.")

    def handle(self, *args: object, **options: object) -> None:
        users = get_user_model().objects
        try:
            user = users.get(username=options["username"])
        except users.model.DoesNotExist:
            raise CommandError(f"No user named {options['username']!r}.") from None
        try:
            api_key, raw_key = api_key_create(user=user, name=str(options["name"]))
        except ValidationError as exc:
            raise CommandError(" ".join(exc.messages)) from exc
        self.stderr.write(
            f"Created key {api_key.name!r} for {user.username}; it is shown only now:"
        )
        self.stdout.write(raw_key)
