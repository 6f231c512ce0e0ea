"""Fuzzing the CoNLL-U reader: mutated files give trees or a ValueError naming file and line."""
import re

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from treelstm.data import read_conllu

GOOD = """# sent_id = s1
# text = The cat sat .
1\tThe\tthe\tDET\tDT\t_\t2\tdet\t_\t_
2\tcat\tcat\tNOUN\tNN\t_\t3\tnsubj\t_\t_
3\tsat\tsit\tVERB\tVBD\t_\t0\troot\t_\t_
4\t.\t.\tPUNCT\t.\t_\t3\tpunct\t_\t_

# sent_id = s2
1-2\tdon't\t_\t_\t_\t_\t_\t_\t_\t_
1\tdo\tdo\tAUX\t_\t_\t3\taux\t_\t_
2\tn't\tnot\tPART\t_\t_\t3\tadvmod\t_\t_
3\tgo\tgo\tVERB\t_\t_\t0\troot\t_\t_

"""

FUZZ = settings(max_examples=200, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])


def check_read(path):
    """read_conllu(path) is a list of valid trees, or a ValueError starting '<path>:<line>: '.
    Any other exception fails the test."""
    try:
        trees = read_conllu(path)
    except ValueError as error:
        assert re.match(rf"{re.escape(str(path))}:\d+: \S", str(error)), str(error)
        return None
    for tree in trees:
        tree.validate()
        assert tree.parent.count(-1) == 1
    return trees


def test_the_good_file_reads(tmp_path):
    path = tmp_path / "good.conllu"
    path.write_text(GOOD, encoding="utf-8")
    trees = check_read(path)
    assert [t.tokens for t in trees] == [["The", "cat", "sat", "."], ["do", "n't", "go"]]


@FUZZ
@given(cut=st.integers(0, len(GOOD)), junk=st.binary(max_size=40))
def test_truncated_and_spliced_files(tmp_path, cut, junk):
    path = tmp_path / "fuzz.conllu"
    path.write_bytes(GOOD.encode("utf-8")[:cut] + junk + GOOD.encode("utf-8")[cut:])
    check_read(path)


@FUZZ
@given(data=st.data())
def test_mutated_fields(tmp_path, data):
    lines = GOOD.splitlines()
    row = data.draw(st.sampled_from([i for i, line in enumerate(lines) if re.match(r"\d", line)]))
    fields = lines[row].split("\t")
    column = data.draw(st.integers(0, len(fields) - 1))
    fields[column] = data.draw(st.sampled_from(
        ["", "_", "0", "-1", "99", "3.5", "x", "1-1", "2.1", "\u00e9\u4e2d", "(", "\t"]))
    lines[row] = "\t".join(fields)
    path = tmp_path / "mutated.conllu"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    check_read(path)
