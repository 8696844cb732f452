"""The published profile's dry run: its trainings (two at a time, by the runner, before the first test: see
``tests/conftest.py``) and verdicts on 64 CCP photos. Its chapters are nbval's: tests/notebooks execute in this run
folder, so that each chapter executes once per suite."""
from clothparse_lib import book
from clothparse_lib.results import intro, verdicts, viz
from clothparse_lib.results.plan import planned_trainings
from clothparse_lib.runfolder import tag


def test_published_profile_dry_run_trains_its_planned_models_concurrently(dry_run):
    assert dry_run.profile.name == book.REFERENCES_PROFILE == book.PUBLISHED_PROFILE + "-dry"
    assert "trainings (concurrent)" in book.chapter_times(dry_run.run_dir).index
    planned = planned_trainings(dry_run)
    assert len(planned) == len(set(planned)) >= 9 and all(dry_run.evaluated(*job) for job in planned)
    trained = intro.training_times(dry_run)
    assert set(trained.index) == {tag(*job) for job in planned} and (trained["seconds"] > 0).all()


def test_published_profile_dry_run_rules_on_every_claim(dry_run):
    """The introduction's verdicts on the published path: every claim, the paired tests over the central seeds."""
    claims = verdicts.claims(dry_run)
    html = viz.verdict_table(claims).html
    assert "skirt pixels are most often taken for dress" in html and "Our model beats Plain U-Net" in html
    assert "low (95 %)" in html and "background-color: #" in html
    assert claims["verdict"].isin(verdicts.VERDICT_COLOURS).all() and sum(verdicts.tally(claims).values()) == len(claims)
    figure = viz.verdict_plot(claims)
    assert len(figure.axes) == 2 and all(ax.has_data() for ax in figure.axes)
