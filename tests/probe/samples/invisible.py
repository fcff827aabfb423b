"""Sample learner code: steps that no other worker can see (a builtin's name, a local's
arithmetic with a number) beside ones it can (a module global, items read by `*` and `%`)."""

total = 0
rows: list[int] = [1, 2]


def local_arithmetic(n: int) -> tuple[int, int]:
    i = n - 1
    j = i + 1
    k = len(range(j))
    return k, j // 2


def global_counter() -> None:
    global total
    seen = total
    total = seen + 1


def reads_items(xs: list[int], fmt: str) -> tuple[list[int], str]:
    return xs * 2, fmt % 3


def shadowing_builtin() -> None:
    global len
    len = print  # a learner may do this: `len` stays a switch point in this function
