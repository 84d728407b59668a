"""The built-in arithmetic world: procedurally generated problems with exact answers and
step-by-step solutions that a tiny character-level model can learn.

Families and what a level means (each level up adds one digit or one term):

    add     4821+397=?          level = digits of the longer operand
    sub     4821-397=?          level = digits of the first operand (never a negative result)
    mul     456*78=?            level = digits(a) + 3*(digits(multiplier) - 1), multiplier 1-2 digits
    sum     12+7+30=?           3-5 terms; level = digits of the longest term + terms - 3
    linear  3*x+7=22, x=?       a is one digit; level = digits(x) + digits(b) - 1
    word    a templated story whose arithmetic is one of the five above, at the same levels

A solution is a trace of short lines, one column (or one division step) per line, ending
with `answer: <integer>`. Every step copies the digits it combines and writes the carry or
borrow explicitly, then the result so far, so each line depends on a few nearby characters:

    4821+397=?        4821-397=?        456*78=?              3*x-7=-22, x=?
    1+7+0=8 8         11-7-0=4 4        456*8                 3*x=-22+7
    2+9+0=11 18       12-9-1=2 24       6*8+0=48 8            -(22-7)
    8+3+1=12 218      8-3-1=4 424       5*8+4=44 48           12-7-0=5 5
    4+0+1=5 5218      4-0-0=4 4424      4*8+4=36 3648         2-0-1=1 15
    answer: 5218      answer: 4424      456*7                 x=-15/3
                                        ... (same steps)      15/3=5 r0 5
                                        3648+31920            x=-5
                                        8+0+0=8 8             answer: -5
                                        ... (column adds)
                                        answer: 35568

An add column is `digit+digit+carry_in=total result_so_far`; the last column writes its
whole total. A sub column borrows by writing the top digit as 1d (`12-9-1=2`: 10 was
borrowed, and the next column subtracts the borrow 1). A sum column is the add column with
more digits. A long-division step is `current/divisor=quotient_digit r<remainder> quotient`,
the first one taking as many leading digits as it needs. A line that only rewrites signs
(`-(22-7)`) comes first when the signed sum is not already `big-small` or `x+y`.
Word problems first restate their arithmetic (`45+27`), then solve it the same way.

`ArithmeticWorld.solve` parses question text of every family with regular expressions and
integer arithmetic only (never eval), and rejects numbers longer than MAX_NUMBER_DIGITS.
"""

from curriculum.worlds.arithmetic.sampling import knob_options, sample_numbers
from curriculum.worlds.arithmetic.tasks import FAMILIES, Task, answer_of, concepts_of, knobs_of, level_of
from curriculum.worlds.arithmetic.text import parse_question, question_of
from curriculum.worlds.arithmetic.traces import expression_of, solution_of
from curriculum.worlds.arithmetic.world import ArithmeticWorld, WorldConfigError, key_of

__all__ = [
    "FAMILIES",
    "ArithmeticWorld",
    "Task",
    "WorldConfigError",
    "answer_of",
    "concepts_of",
    "expression_of",
    "key_of",
    "knob_options",
    "knobs_of",
    "level_of",
    "parse_question",
    "question_of",
    "sample_numbers",
    "solution_of",
]
