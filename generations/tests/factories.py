import factory
from django.contrib.auth import get_user_model
from django.utils import timezone

from generations.kinds import GenerationKind
from generations.models import Attempt, Generation, GenerationMetadata, Item, Variant
from generations.states import AttemptOutcome, QueueReason


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.com")
    password = factory.django.Password("correct horse battery staple")


class GenerationFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Generation

    owner = factory.SubFactory(UserFactory)
    kind = GenerationKind.VIDEO_AD
    title = factory.Sequence(lambda n: f"Spring campaign {n}")
    prompt = "A bright kitchen, a family cooking pasta together"
    input = factory.LazyAttribute(
        lambda gen: {"seed": 7, "variants": ["soft"], "scenes_per_variant": 1}
    )
    provider = "local"
    provider_model = "local-render-1"


class VariantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Variant

    generation = factory.SubFactory(GenerationFactory)
    label = factory.Sequence(lambda n: f"variant{n}")
    position = factory.Sequence(lambda n: n)


class ItemFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Item

    variant = factory.SubFactory(VariantFactory)
    generation = factory.SelfAttribute("variant.generation")
    number = factory.Sequence(lambda n: n + 1)
    prompt = "Close-up of steam rising from the pot"


class GenerationMetadataFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = GenerationMetadata

    generation = factory.SubFactory(GenerationFactory)


class AttemptFactory(factory.django.DjangoModelFactory):
    """An ended attempt (completed unless `outcome` says otherwise)."""

    class Meta:
        model = Attempt

    item = factory.SubFactory(ItemFactory)
    generation = factory.SelfAttribute("item.generation")
    number = 1
    reason = QueueReason.FIRST_RUN
    started_at = factory.LazyFunction(timezone.now)
    ended_at = factory.LazyFunction(timezone.now)
    outcome = AttemptOutcome.COMPLETED
