"""Short job references: readable, forgiving when typed, and leading back to the job."""

from __future__ import annotations

from rasa_rpa.jobref import job_ref, ref_id_prefix
from rasa_rpa.models import new_job_id


def test_a_reference_is_short_readable_and_leads_back_to_the_job():
    for _ in range(200):
        job_id = new_job_id()
        ref = job_ref(job_id)
        assert len(ref) == 7 and ref[3] == "-"
        assert not set(ref) & set("ILOU")
        normalised, prefix = ref_id_prefix(ref.lower().replace("-", "")) or ("", "")
        assert normalised == ref
        assert job_id.startswith(prefix) and len(prefix) == 7


def test_a_typed_reference_forgives_look_alikes():
    ref = job_ref("0" * 32)
    assert ref == "000-000"
    assert ref_id_prefix("ooo-OIO") == ("000-010", "0000008")
    assert ref_id_prefix("not a ref") is None
    assert ref_id_prefix("ABCDEFG") is None


def test_an_id_that_is_not_hex_still_gets_a_stable_reference():
    assert job_ref("job-1") == job_ref("job-1") != job_ref("job-2")
