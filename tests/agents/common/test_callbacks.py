from rlhf_gym.agents.common.callbacks import IterationCallback


class Recorder(IterationCallback):
    def __init__(self) -> None:
        super().__init__()
        self.seen: list[tuple[int, int]] = []

    def on_iteration(self, iteration: int) -> None:
        self.seen.append((iteration, self.model._n_updates))


def test_one_call_per_iteration_boundary_after_each_update(agent_factory) -> None:
    agent = agent_factory(n_epochs=1)
    recorder = Recorder()
    steps = agent.n_steps * agent.n_envs
    agent.learn(3 * steps, callback=recorder)
    # boundary n comes after the n-th update has run (n_epochs=1: one SB3 update per iteration)
    assert recorder.seen == [(0, 0), (1, 1), (2, 2), (3, 3)]
    agent.learn(steps, callback=recorder, reset_num_timesteps=False)
    assert recorder.seen[-1] == (4, 4) and len(recorder.seen) == 5
