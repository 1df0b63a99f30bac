"""The metadata filter rules (``ragcun.index.filters.compile_filter``), the one implementation every store uses."""

from __future__ import annotations

import pytest

from ragcun.index.filters import compile_filter

DOC = {"genre": "sf", "year": 1995, "rating": 4.5, "tags": ["space", "robots"], "title": "The Long Way",
       "draft": False, "note": None}


def matches(spec, metadata=DOC) -> bool:
    predicate = compile_filter(spec)
    assert predicate is not None
    return predicate(metadata)


def test_none_stays_none_and_a_callable_is_used_as_is():
    assert compile_filter(None) is None
    check = lambda md: md.get("year") == 1995  # noqa: E731
    assert compile_filter(check) is check


def test_an_empty_dict_matches_everything():
    assert matches({}) and matches({}, {})


@pytest.mark.parametrize(("spec", "expected"), [
    ({"genre": "sf"}, True),
    ({"genre": "romance"}, False),
    ({"genre": "sf", "year": 1995}, True),           # several keys are ANDed
    ({"genre": "sf", "year": 1996}, False),
    ({"tags": {"$eq": ["space", "robots"]}}, True),  # equality with a list value needs $eq
    ({"tags": ["space", "robots"]}, False),          # a plain list is membership: the list is not one of its items
    ({"note": None}, True),
    ({"draft": False}, True),
])
def test_equality(spec, expected):
    assert matches(spec) is expected


@pytest.mark.parametrize(("op", "want", "expected"), [
    ("$eq", 1995, True), ("$eq", 1996, False),
    ("$ne", 1996, True), ("$ne", 1995, False),
    ("$gt", 1994, True), ("$gt", 1995, False),
    ("$gte", 1995, True), ("$gte", 1996, False),
    ("$lt", 1996, True), ("$lt", 1995, False),
    ("$lte", 1995, True), ("$lte", 1994, False),
    ("$in", [1990, 1995], True), ("$in", [1990], False), ("$in", (1995,), True), ("$in", {1995}, True),
    ("$nin", [1990], True), ("$nin", [1995, 2000], False),
    ("$exists", True, True), ("$exists", False, False),
])
def test_each_comparison_operator(op, want, expected):
    assert matches({"year": {op: want}}) is expected


@pytest.mark.parametrize(("spec", "expected"), [
    ({"tags": {"$contains": "space"}}, True),
    ({"tags": {"$contains": "boats"}}, False),
    ({"title": {"$contains": "Long"}}, True),       # substring of a string value
    ({"year": {"$contains": 9}}, False),            # not a container
    ({"tags": {"$any": ["boats", "robots"]}}, True),
    ({"tags": {"$any": ["boats"]}}, False),
    ({"tags": {"$all": ["robots", "space"]}}, True),
    ({"tags": {"$all": ["robots", "boats"]}}, False),
    ({"title": {"$any": ["Long"]}}, False),         # $any / $all need a list value, not a string
    ({"title": {"$text_match": "Long W"}}, True),
    ({"title": {"$text_match": "long w"}}, False),  # case-sensitive
    ({"year": {"$text_match": "19"}}, False),       # only strings match text
])
def test_container_and_text_operators(spec, expected):
    assert matches(spec) is expected


def test_contains_of_a_non_string_in_a_string_does_not_match_rather_than_raise():
    assert matches({"title": {"$contains": 3}}) is False
    assert matches({"title": {"$contains": None}}) is False


def test_several_operators_on_one_key_are_anded():
    assert matches({"year": {"$gte": 1990, "$lt": 2000}})
    assert not matches({"year": {"$gte": 1990, "$lt": 1995}})


@pytest.mark.parametrize(("op", "want", "expected"), [
    ("$eq", 1, False), ("$gt", 1, False), ("$gte", 1, False), ("$lt", 1, False), ("$lte", 1, False),
    ("$in", [1], False), ("$contains", 1, False), ("$any", [1], False), ("$all", [1], False),
    ("$text_match", "x", False),
    ("$ne", 1, True), ("$nin", [1], True),
    ("$exists", False, True), ("$exists", True, False),
])
def test_a_missing_key_matches_only_ne_nin_and_exists_false(op, want, expected):
    assert matches({"absent": {op: want}}) is expected


def test_a_missing_key_reads_as_none_as_in_langchain_faiss():
    assert matches({"absent": None}) and matches({"note": None})
    assert matches({"absent": {"$in": [None, 1]}}) and not matches({"absent": {"$nin": [None]}})
    assert not matches({"absent": {"$ne": None}}) and not matches({"absent": {"$neq": None}})
    assert matches({"absent": {"$exists": False}}) and not matches({"note": {"$exists": False}})


@pytest.mark.parametrize(("spec", "expected"), [
    ({"year": [1990, 1995]}, True), ({"year": [1990, 1996]}, False), ({"year": (1995,)}, True),
    ({"year": {1995, 2000}}, True), ({"genre": ["sf", "romance"]}, True), ({"year": []}, False),
    ({"absent": [None]}, True), ({"tags": ["space"]}, False),  # membership of the field's value, not overlap
    ({"$not": {"year": [1995]}}, False), ({"$or": [{"genre": ["x"]}, {"year": [1995]}]}, True),
])
def test_a_list_value_is_membership_as_in_langchain_faiss(spec, expected):
    assert matches(spec) is expected


@pytest.mark.parametrize(("op", "want", "expected"), [("$neq", 1995, False), ("$neq", 1990, True)])
def test_neq_is_an_alias_of_ne(op, want, expected):
    assert matches({"year": {op: want}}) is expected and matches({"year": {"$ne": want}}) is expected


def test_an_empty_operator_dict_constrains_nothing():
    assert matches({"year": {}}) and matches({"absent": {}})


def test_a_condition_mixing_operators_and_plain_keys_is_refused():
    with pytest.raises(ValueError, match=r"condition on key 'year' mixes operators and plain keys: \['\$gt', 'a'\]"):
        compile_filter({"year": {"$gt": 1, "a": 2}})
    assert not matches({"title": {"a": 1}})  # no $ keys: equality with a dict value


@pytest.mark.parametrize("op", ["$gt", "$gte", "$lt", "$lte"])
def test_incomparable_types_do_not_match_rather_than_raise(op):
    assert matches({"genre": {op: 3}}) is False
    assert matches({"year": {op: "1995"}}) is False
    assert matches({"note": {op: 0}}) is False
    assert matches({"tags": {op: 1}}) is False


def test_and_or_not_combine_and_nest():
    assert matches({"$and": [{"genre": "sf"}, {"year": {"$gt": 1990}}]})
    assert not matches({"$and": [{"genre": "sf"}, {"year": {"$gt": 2000}}]})
    assert matches({"$or": [{"genre": "romance"}, {"year": 1995}]})
    assert not matches({"$or": [{"genre": "romance"}, {"year": 1996}]})
    assert matches({"$not": {"genre": "romance"}})
    assert not matches({"$not": {"genre": "sf"}})
    assert matches({"$or": [{"$and": [{"genre": "sf"}, {"$not": {"draft": True}}]}, {"year": 0}]})
    assert matches({"genre": "sf", "$or": [{"year": 1}, {"rating": {"$gte": 4}}]})  # fields and combinators ANDed


def test_empty_and_or_follow_all_and_any():
    assert matches({"$and": []})
    assert not matches({"$or": []})


def test_combinators_take_callables_too():
    assert matches({"$and": [lambda md: md["year"] > 1990, {"genre": "sf"}]})
    assert matches({"$not": lambda md: md["year"] > 2000})


@pytest.mark.parametrize(("spec", "message"), [
    ({"year": {"$gt": 1, "$between": [1, 2]}}, r"unknown filter operator\(s\) \['\$between'\] for key 'year'"),
    ({"year": {"$regex": "19"}}, "unknown filter operator"),
    ({"$xor": [{"year": 1995}]}, r"unknown filter combinator '\$xor'"),
    ({"year": {"$in": 1995}}, r"\$in needs a list value; got 1995"),
    ({"year": {"$in": "1995"}}, r"\$in needs a list value"),       # a string is not a list of values
    ({"year": {"$nin": 1995}}, r"\$nin needs a list value"),
    ({"tags": {"$any": "space"}}, r"\$any needs a list value"),
    ({"tags": {"$all": "space"}}, r"\$all needs a list value"),
    ({"$and": {"year": 1995}}, r"\$and needs a list value"),
    ({"$or": "x"}, r"\$or needs a list value"),
    ({"$not": None}, r"\$not needs filter specs; got None"),
    ({"$and": [None]}, r"\$and needs filter specs; got None"),
])
def test_malformed_specs_are_refused_when_compiled(spec, message):
    with pytest.raises(ValueError, match=message):
        compile_filter(spec)


@pytest.mark.parametrize("spec", [[{"year": 1995}], "genre = 'sf'", 3, {"$not": 3}, {"$or": [3]}])
def test_a_spec_that_is_not_a_dict_callable_or_none_is_a_type_error(spec):
    with pytest.raises(TypeError, match="filter must be a dict, a callable or None"):
        compile_filter(spec)


def test_a_dict_value_mixing_operators_and_plain_keys_is_compared_through_eq():
    value = {"$gt": 1, "b": 2}
    assert matches({"meta": {"$eq": value}}, {"meta": value})
    assert not matches({"meta": {"$eq": value}}, {"meta": 5})
    with pytest.raises(ValueError, match="mixes operators and plain keys"):
        compile_filter({"meta": value})  # LangChain's FAISS refuses it too ("unsupported operator: b")
