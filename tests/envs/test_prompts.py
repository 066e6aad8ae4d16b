from rlhf_gym.envs.prompts import read_prompts


def test_read_prompts_text_and_jsonl(tmp_path):
    text = tmp_path / "p.txt"
    text.write_text("a b\n\n c \n")
    assert read_prompts(text) == ["a b", "c"]
    lines = tmp_path / "p.jsonl"
    lines.write_text('{"prompt": "x :"}\n{"prompt": "y :", "other": 1}\n')
    assert read_prompts(lines) == ["x :", "y :"]
