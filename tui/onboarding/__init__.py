"""First-start setup: a sequence of screens that ends with a backend and a model chosen.

Run with ``spezichat --onboarding`` (or on the first start). The flow lives in
:mod:`tui.onboarding.flow`; the first two steps (welcome, backend choice) in
:mod:`tui.onboarding.screens`.

Adding or changing a backend's steps (the hook)
-----------------------------------------------
Each backend's descriptor in :mod:`tui.backends` names its steps (its ``onboarding``),
next to its label, one-line summary and availability check; the backend choice offers
every registered backend that has steps, in the registry's order::

    def onboarding() -> tuple[StepFactory, ...]:      # in tui/backends/local.py
        from tui.onboarding.local import LocalDownloadStep, OffloadStep, StarterModelStep

        return (StarterModelStep, LocalDownloadStep, OffloadStep)

    BACKEND = Backend(
        id="local",                      # written to settings.general.backend
        label="On-device model",         # shown in the backend choice
        summary="Runs on this computer, offline.",   # one line under the title
        requires=("llama_cpp:llama-cpp-python",),    # else shown, disabled, with why
        onboarding=onboarding,
        ...
    )

The step screens live in the backend's module here (``tui.onboarding.local``).

A step is an :class:`~tui.onboarding.flow.OnboardingStep` (a Textual ``Screen``):

* set ``TITLE`` and ``INTRO`` and implement ``compose_step()`` for its widgets;
* read and write ``self.state.settings`` (a working copy, saved when the flow ends) and
  ``self.state.values`` (scratch space shared by the steps; prefix keys with the
  branch id, for example ``"local.download_path"``);
* call ``self.flow.advance()`` when done. Esc goes back (``onboarding.back``);
* a step with nothing to ask in the current state (a download when the model is
  already here) overrides the classmethod ``skip(state) -> bool``; the flow passes
  over it going forward and back. ``self.flow.finish()`` ends the flow early;
* the last step must set ``settings.general.backend`` and ``settings.general.model``.

Long work (a download, a discovery) belongs in a worker (``@work``) of the step; show
progress and errors on the step itself and keep the app responsive. The availability
check (``Backend.unavailable``) must be quick and do no network I/O: it returns the
reason the choice is disabled (for example a missing package), or ``None``.
"""
