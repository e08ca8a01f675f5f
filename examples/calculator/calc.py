"""A tiny calculator: `calc.py 6 '*' 7` prints 42."""
import operator
import sys

OPS = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv}


def main(argv):
    if len(argv) != 3 or argv[1] not in OPS:
        print("usage: calc.py NUMBER (+|-|*|/) NUMBER", file=sys.stderr)
        return 2
    result = OPS[argv[1]](float(argv[0]), float(argv[2]))
    print(int(result) if result.is_integer() else result)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
