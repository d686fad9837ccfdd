"""PNGs of a run's training curves under ``training_logs/plots/``, drawn at each checkpoint and at the
end of the run (``--no-plots`` turns them off). Without the ``report`` extra a run notes, once, that
plots were skipped; a failure to plot never fails a run."""

from mglkit import hookimpl


def _plot(run) -> None:
    if not run.config.plots or run.sinks.get("plots skipped"):
        return
    from mglkit.plots import ReportExtraMissing, plot_run

    try:
        plot_run(run.dir)
    except ReportExtraMissing:
        run.sinks["plots skipped"] = True
        run.note("plots skipped: pip install 'mglkit[report]' to draw them")


@hookimpl
def run_checkpoint(run, step):
    _plot(run)


@hookimpl
def run_finished(run):
    _plot(run)
