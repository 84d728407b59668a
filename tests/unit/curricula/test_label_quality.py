import duckdb
import pytest

from curriculum.curricula.label_quality import label_agreement, same_answer
from curriculum.records import Problem
from curriculum.store import Store
from curriculum.store.schema import MIGRATIONS


def oracle(question: str) -> str | None:
    """Sums 'a+b=?' questions; anything else it cannot check."""
    left, _, rest = question.partition("+")
    right = rest.removesuffix("=?")
    return str(int(left) + int(right)) if left.isdigit() and right.isdigit() else None


def labelled(question: str, answer: str, by: str = "model") -> Problem:
    return Problem(question=question, answer=answer, source="teacher", answer_source=by)


def test_agreement_counts_only_model_labels_that_can_be_checked():
    problems = [
        labelled("2+3=?", "5"),
        labelled("4+4=?", "8.0"),  # the same number
        labelled("9+9=?", "17"),  # a wrong majority vote
        labelled("what is a prime?", "2"),  # the oracle cannot say
        labelled("1+1=?", "3", by="oracle"),  # not model-labelled: ignored
        labelled("5+5=?", "10", by="dataset"),
    ]
    quality = label_agreement(problems, oracle)
    assert (quality.model_labelled, quality.checked, quality.agreed) == (4, 3, 2)
    assert quality.agreement == pytest.approx(2 / 3)
    assert quality.disagreements == [problems[2].id]
    assert quality.metrics("labels") == {
        "labels/model_labelled": 4.0,
        "labels/checked": 3.0,
        "labels/agreement": pytest.approx(2 / 3),
    }


def test_nothing_checkable_reports_no_agreement_rather_than_a_perfect_one():
    quality = label_agreement([labelled("why?", "because"), labelled("1+1=?", "2", by="oracle")], oracle)
    assert quality.agreement is None
    assert quality.metrics() == {"labels/model_labelled": 1.0, "labels/checked": 0.0}


def test_same_answer():
    assert same_answer(" 12 ", "12.0") and same_answer("$7$", "7") and not same_answer("7", "-7")
    assert same_answer("x+1", "x+1") and not same_answer("x+1", "x+2")


def test_answer_source_is_stored_and_old_stores_migrate_to_oracle(tmp_path):
    path = tmp_path / "v1.duckdb"
    with duckdb.connect(str(path)) as con:  # a store written before answer_source existed
        con.execute(
            "CREATE TABLE schema_version (version INTEGER PRIMARY KEY, description VARCHAR NOT NULL, "
            "applied_at TIMESTAMP NOT NULL DEFAULT current_localtimestamp())"
        )
        for statement in MIGRATIONS[0].statements:
            con.execute(statement)
        con.execute("INSERT INTO schema_version (version, description) VALUES (1, 'initial schema')")
        con.execute(
            "INSERT INTO problems VALUES ('p1', '1+1=?', '2', '', 'seed', NULL, 'add', 1, [], MAP {}, 0, 'world', NULL)"
        )
    model_made = labelled("2+2=?", "4")
    with Store(path) as store:
        [old] = store.get_problems(["p1"])
        assert old.answer_source == "oracle"
        store.append([model_made])
        assert store.get_problems([model_made.id]) == [model_made]


def test_reference_agreement_counts_every_vote_and_the_share_that_gave_the_reference():
    from curriculum.curricula.label_quality import reference_agreement

    assert reference_agreement([True, False, False, True]).metrics("labels") == {
        "labels/reference_checked": 4.0,
        "labels/reference_agreement": 0.5,
    }
    assert reference_agreement([]).metrics("labels") == {"labels/reference_checked": 0.0}  # no score without a check
