from decimal import Decimal

import pytest
from django.db import IntegrityError, transaction

from generations.models import Generation, GenerationMetadata, Item, Variant
from generations.tests.factories import (
    GenerationFactory,
    GenerationMetadataFactory,
    ItemFactory,
    VariantFactory,
)

pytestmark = pytest.mark.django_db


def _violates(**changes):
    generation = GenerationFactory(total_items=4)
    with pytest.raises(IntegrityError), transaction.atomic():
        Generation.objects.filter(pk=generation.pk).update(**changes)


def test_unknown_status_is_refused_by_the_database():
    _violates(status="running")


def test_unknown_kind_is_refused_by_the_database():
    _violates(kind="podcast")


def test_counters_beyond_total_are_refused():
    _violates(completed_items=3, failed_items=2)


def test_negative_counter_is_refused():
    _violates(failed_items=-1)


def test_negative_cost_is_refused():
    _violates(actual_cost=Decimal("-0.01"))


def test_variant_counters_beyond_total_are_refused():
    variant = VariantFactory(total_items=2)
    with pytest.raises(IntegrityError), transaction.atomic():
        Variant.objects.filter(pk=variant.pk).update(completed_items=3)


def test_item_status_is_checked():
    item = ItemFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        Item.objects.filter(pk=item.pk).update(status="done")


def test_item_numbers_are_unique_within_a_variant():
    item = ItemFactory(number=1)
    with pytest.raises(IntegrityError), transaction.atomic():
        ItemFactory(variant=item.variant, number=1)


def test_variant_labels_are_unique_within_a_generation():
    variant = VariantFactory(label="soft")
    with pytest.raises(IntegrityError), transaction.atomic():
        VariantFactory(generation=variant.generation, label="soft")


def test_deleting_a_generation_removes_everything_below_it():
    item = ItemFactory()
    generation = item.generation
    GenerationMetadataFactory(generation=generation)

    generation.delete()

    assert not Variant.objects.exists()
    assert not Item.objects.exists()
    assert not GenerationMetadata.objects.exists()


def test_deleting_a_parent_keeps_its_regenerations():
    parent = GenerationFactory()
    child = GenerationFactory(owner=parent.owner, parent=parent)

    parent.delete()

    child.refresh_from_db()
    assert child.parent is None


def test_pending_items_and_percent_are_derived_from_counters():
    generation = GenerationFactory.build(
        total_items=16, completed_items=11, failed_items=1, cancelled_items=0
    )
    assert generation.pending_items == 4
    assert generation.progress_percent == 75


def test_percent_of_an_empty_generation_is_zero():
    assert GenerationFactory.build(total_items=0).progress_percent == 0
