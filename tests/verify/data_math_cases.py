r"""Verdict tables for math grading (tests/verify/test_math.py). The benchmark
(benchmarks/grade_bench.py) measures on held-out rows, none of them here.

``EQUIV``: (gold, prediction, expected) for two already-extracted answers. Golds are MATH-500 /
GSM8K / AIME answer shapes (verbatim where possible); predictions are how models write the same
or a different value. Rows marked "issue #N" are cases reported on huggingface/Math-Verify; the
rows after "one answer" are reasonloop's issue 16 (hedges, labels, sets, bare expressions).

``RESPONSES``: (gold, full model response, expected reason) in the shapes models produce: our
thought/solution format, R1 ``<think>``, Minerva "Final Answer: ... I hope it is correct.",
GSM8K ``####``, unfinished thoughts and truncated boxes.

Policies these tables fix (see reasonloop.verify.math): decimals are exact (0.333 != 1/3);
units, ``\$``, ``\%`` and degree marks are ignored (``25\%`` = 25, not 0.25); a bare comma list
is an unordered list of solutions, compared as a set (``2, 3, 3`` = ``3, 2``); ``(a,b)`` and
``[a,b]`` differ; a bare pair ``a, b`` never equals ``(a,b)``; a base subscript may be dropped
(``52`` = ``52_8``) but not changed; an answer that hedges (``6\text{ (or 7)}``, ``\approx 6``,
``x = 7 = 6``) is wrong.
"""

from __future__ import annotations

import re

T, F = True, False

EQUIV: list[tuple[str, str, bool]] = [
    # --- integers, AIME, GSM8K ---------------------------------------------------------------
    ("25", "25", T),
    ("25", "025", T),  # AIME answers with leading zeros
    ("73", "073", T),
    ("0", "0", T),
    ("-1", "-1", T),
    ("-1", "1", F),
    ("204", "240", F),
    ("1000", "1,000", T),
    ("2125", "2,125", T),
    ("12", "1,2", F),
    ("1,2", "12", F),
    ("23", "2 3", F),
    ("6", "1 2 3", F),
    ("2.3", "2 .3", F),
    ("12", "12.0", T),
    ("12", "12.5", F),
    ("100", "10^2", T),
    ("1024", "2^{10}", T),
    ("1024", "2^10", T),
    ("120", "5!", T),
    ("5", "5!", F),
    ("6", r"\binom{4}{2}", T),
    ("10", r"\dbinom{5}{2}", T),
    ("18", r"\$18", T),
    ("18", "18.00", T),
    ("18", r"\$18.00", T),
    ("-10", "-10", T),
    ("-10", "10", F),
    ("70000", "70,000", T),
    ("70000", r"\$70,000", T),
    ("70000", "7000", F),
    ("1000", r"\$1,000", T),
    ("1000", "1000 dollars", T),
    ("1000", "1,000 dollars", T),
    ("460", "460 cups", T),
    ("35", "35 minutes", T),
    ("16", r"16 \text{ eggs}", T),
    ("7", r"7\text{ hours}.", T),
    # --- decimals and fractions ----------------------------------------------------------------
    ("0.5", r"\frac12", T),
    (r"\frac12", "0.5", T),
    (r"\frac{1}{3}", "0.333", F),
    (r"\frac{1}{3}", "0.3333333", F),
    (r"\frac{1}{3}", "1/3", T),
    (r"\frac43", r"\frac{4}{3}", T),
    (r"\frac 59", "5/9", T),
    (r"\frac9{19}", r"\frac{9}{19}", T),
    (r"\frac65", "1.2", T),
    (r"\frac14", r"\frac{1}{4}", T),
    (r"\frac 34", "0.75", T),
    (r"\dfrac{17}{50}", "0.34", T),
    (r"\dfrac{33}{100}", "33/100", T),
    ("1.25", r"\frac54", T),
    ("1.25", "1.250", T),
    ("0.15", ".15", T),
    (".0000672", r"6.72\times10^{-5}", T),
    (".35625", r"\frac{57}{160}", T),
    ("326.5", "326.50", T),
    ("3.21", "3.2", F),
    ("4.5", "4.50", T),
    ("2", "2.0001", F),
    ("2", "2.0", T),
    (r"\frac{3}{56}", r"\frac{6}{112}", T),
    (r"\frac{3}{56}", r"\frac{3}{65}", F),
    (r"-\frac{35}{9}", r"-3\frac{8}{9}", T),
    (r"-\frac{35}{9}", r"\frac{35}{9}", F),
    (r"1\frac{4}{5}", r"\frac95", T),
    (r"1\frac{4}{5}", "1.8", T),
    (r"137 \frac{1}{2}", "137.5", T),
    (r"137 \frac{1}{2}", r"\frac{275}{2}", T),
    (r"137 \frac{1}{2}", "68.5", F),
    (r"\frac{14}{3}", r"4\frac{2}{3}", T),
    (r"\frac{14}{3}", "4.67", F),
    (r"\frac{243}{625}", "0.3888", T),
    (r"\frac{448}{15625}", "0.028672", T),
    (r"\frac{9}{256}", "0.03515625", T),
    (r"\frac{1997}{2}", "998.5", T),
    (r"\frac{2}{1005}", r"\frac{4}{2010}", T),
    (r"\frac{2}{1005}", r"\frac{2}{1050}", F),
    (r"\frac{1}{2^{99}}", r"\frac{1}{2^{98}}", F),  # issue #14
    (r"\frac{1}{2004!}", r"\frac{1}{2006!}", F),  # issue #14
    (r"\frac{2^{2005}+1}{3 \cdot 2^{2006}}", r"\frac{1}{3 \cdot 2^{2006}}", F),  # issue #14
    # --- radicals, pi, e, trig, logs -----------------------------------------------------------
    (r"3\sqrt{13}", r"\sqrt{117}", T),
    (r"11\sqrt2", r"11\sqrt{2}", T),
    (r"70 \sqrt{2}", r"70\sqrt2", T),
    (r"\frac{3\sqrt{3}}{4}", r"\frac{3}{4}\sqrt{3}", T),
    (r"\frac{\sqrt{3}}{3}", r"\frac{1}{\sqrt{3}}", T),
    (r"\frac{\sqrt{3}}{3}", r"\frac{\sqrt{3}}{2}", F),
    (r"\sqrt{51}", "7.14", F),
    (r"\sqrt{2}", "1.41421356", F),
    (r"2\sqrt{5}", r"\sqrt{20}", T),
    (r"2\sqrt{5}", r"\sqrt{10}", F),
    (r"16 \sqrt{3}", r"16\sqrt3", T),
    (r"2\sqrt{113}", r"\sqrt{452}", T),
    (r"\frac{\sqrt{21}}{5}", r"\sqrt{\frac{21}{25}}", T),
    (r"\sqrt{5+2\sqrt6}", r"\sqrt2+\sqrt3", T),
    (r"\sqrt[3]{8}", "2", T),
    (r"\sqrt[3]{-8}", "-2", T),
    (r"\pi", "3.14159", F),
    (r"\pi", r"\pi", T),
    (r"288 \pi", r"288\pi", T),
    (r"7\pi", r"\pi \cdot 7", T),
    (r"18+2\pi", r"2\pi+18", T),
    (r"18+2\pi", r"18+\pi", F),
    (r"\frac{20000}{\pi}", r"20000/\pi", T),
    (r"-\frac{\pi}{6}", r"-\pi/6", T),
    (r"-\frac{\pi}{6}", r"\frac{\pi}{6}", F),
    (r"\dfrac{\pi}{2}", "pi/2", T),  # issue #69
    (r"-2\pi", "-2*pi", T),  # issue #69
    (r"e^{16} - 1", "-1 + e^{16}", T),  # issue #69
    (r"1 - \frac{1}{e}", r"1 + \frac{1}{e}", F),  # issue #14
    (r"1+2\sqrt{3}", r"2\sqrt3+1", T),
    (r"11 \sqrt{5} + 11", r"11(\sqrt5+1)", T),
    (r"\cot x", r"\frac{\cos x}{\sin x}", T),
    (r"\cot x", r"\frac{1}{\tan x}", T),
    (r"\cot x", r"\tan x", F),
    ("3", r"\log_2 8", T),
    ("2", r"\log_{3} 9", T),
    (r"\frac{\pi}{2}", r"\arcsin 1", T),
    (r"\frac{1}{2}", r"\cos\frac{\pi}{3}", T),
    (r"\frac{1}{2}", r"\sin(\pi/6)", T),
    ("-1", r"e^{i\pi}", T),
    # --- complex numbers -----------------------------------------------------------------------
    ("6 - 5i", "6-5i", T),
    ("6 - 5i", "-5i+6", T),
    ("6 - 5i", "6+5i", F),
    ("6+9i", "6 + 9i", T),
    ("-2 + 7i", "7i - 2", T),
    ("1+274i", "1 + 274 i", T),
    ("1 - 12i", "1-12i", T),
    ("1 - 12i", "12i - 1", F),
    ("1+2i", "(1+i)^2 + 1", T),
    ("1+2i", r"\frac{5}{1-2i}", T),
    ("14 - i", "14.0 + -1.0i", T),  # issue #69
    # --- degrees, money, units, percent, thousands separators ---------------------------------
    (r"90^\circ", "90", T),
    ("90", r"90^\circ", T),
    (r"90^\circ", r"90^{\circ}", T),
    (r"90^\circ", "90°", T),
    (r"145^\circ", "145", T),
    (r"145^\circ", r"135^\circ", F),
    (r"30^\circ", r"\frac{\pi}{6}", F),
    (r"\frac{270}7\text{ degrees}", r"\frac{270}{7}", T),
    (r"\frac{270}7\text{ degrees}", "38.57", F),
    (r"\$18.90", "18.9", T),
    (r"\$18.90", "18.90", T),
    (r"\$18.90", r"\$18.9", T),
    (r"\$18.90", "19.80", F),
    (r"\$32,\!348", "32348", T),
    (r"\$32,\!348", r"\$32,348", T),
    (r"\$36", "36 dollars", T),
    (r"\$36", "36", T),
    (r"5.4 \text{ cents}", "5.4", T),
    (r"5.4 \text{ cents}", "5.4 cents", T),
    (r"5.4 \text{ cents}", "54", F),
    (r"864 \mbox{ inches}^2", "864", T),
    (r"864 \mbox{ inches}^2", r"864 \text{ in}^2", T),
    (r"15\mbox{ cm}^2", r"15 \text{cm}^2", T),
    (r"15\mbox{ cm}^2", "15", T),
    (r"15\mbox{ cm}^2", "16", F),
    (r"25\%", "25", T),
    ("25", r"25\%", T),
    (r"25\%", "0.25", F),
    (r"10,\!080", "10080", T),
    (r"10,\!080", "10,080", T),
    (r"10,\!080", "10.080", F),
    (r"11,\! 111,\! 111,\! 100", "11111111100", T),
    ("58,500", "58500", T),
    ("58,500", "58,500", T),
    ("58,500", "58.5", F),
    (r"-\frac{5}{3}.", r"-\frac53", T),  # math_train golds with a trailing period
    (r"30^\circ.", "30", T),
    # --- words and multiple-choice letters ------------------------------------------------------
    (r"\text{Evelyn}", "Evelyn", T),
    (r"\text{Evelyn}", r"\text{evelyn}", T),
    (r"\text{Evelyn}", r"\text{Emily}", F),
    (r"\text{east}", "East", T),
    (r"\text{east}", r"\text{west}", F),
    (r"\text{east}", r"\text{seat}", F),
    (r"\text{even}", r"\text{odd}", F),
    (r"\text{even}", r"\textbf{even}", T),
    (r"\text{ellipse}", r"\text{Ellipse}", T),
    (r"\text{ellipse}", r"\text{circle}", F),
    (r"\text{Navin}", "Navin", T),
    (r"\text{(C)}", "C", T),
    (r"\text{(C)}", "(C)", T),
    (r"\text{(C)}", r"\textbf{(C)}", T),
    (r"\text{(C)}", r"\text{(D)}", F),
    (r"\text{(E)}", "E", T),
    (r"\text{(B)}", "A", F),
    ("13", r"\text{13}", T),  # issue #37
    # --- numbers in a base ---------------------------------------------------------------------
    ("52_8", "52_8", T),
    ("52_8", "52_{8}", T),
    ("52_8", "52", T),
    ("52_8", "42", F),
    ("4210_{5}", "4210_5", T),
    ("4210_{5}", "4210", T),
    ("4210_{5}", "4201_5", F),
    ("204_5", "204_{5}", T),
    ("2516_8", "2516_{8}", T),
    ("40_9", "40_{10}", F),
    ("4343_6", "4343", T),
    # --- expressions, equations ----------------------------------------------------------------
    ("x=5", "5", T),
    ("5", "x=5", T),
    ("x=5", "x = 5", T),
    ("x=5", "y=5", F),
    ("x=5", "x=6", F),
    ("y = 2x + 3", "2x+3", T),
    ("y = 2x + 3", "y=3+2x", T),
    ("y = 2x + 3", "2x - y + 3 = 0", T),
    ("y = 2x + 3", "y = 3x + 2", F),
    ("y = -2x", "y=-2x", T),
    ("5x - 7y + 11z + 4 = 0", "-5x+7y-11z-4=0", T),
    ("5x - 7y + 11z + 4 = 0", "10x-14y+22z+8=0", T),
    ("5x - 7y + 11z + 4 = 0", "5x-7y+11z-4=0", F),
    ("3x-y+13=0", "3x+4y+14=0", F),  # issue #60
    ("2x+4y-3=0", r"y = -\frac{1}{2}x + \frac{3}{4}", T),  # issue #26
    ("p - q", "p-q", T),
    ("p - q", "-q+p", T),
    ("p - q", "q - p", F),
    ("2k+2", "2(k+1)", T),
    ("2k", "k+k", T),
    ("2k", "2", F),
    ("(a+5)(b+2)", "ab+2a+5b+10", T),
    ("(a+5)(b+2)", "(a+2)(b+5)", F),
    ("x^3+3x-6", "x^3 + 3x - 6", T),
    ("x^3+3x-6", "x^3+3x+6", F),
    ("6r^2-4r-24", "2(3r^2-2r-12)", T),
    ("5r^5", "5 r^{5}", T),
    ("5r^5", "5r^4", F),
    ("3R^2", "3r^2", F),
    ("15x - 80", "5(3x-16)", T),
    ("-13x+3", "3-13x", T),
    ("8n^2 + 4n + 1", "8n^2+4n+1", T),
    ("x^5 - x^4 + x^3 - x^2 + x - 1", "(x-1)(x^4+x^2+1)", T),
    ("x^8 + x^7 + x^6 + x^5 + x^4 + x^3 + x^2 + x + 1", r"\frac{x^9-1}{x-1}", T),
    (r"\frac{11+9a}{20}", r"\frac{11}{20}+\frac{9a}{20}", T),
    ("x+1", "x-1", F),
    (r"\sqrt{x^2}", "x", F),
    # --- lists and sets of solutions -------------------------------------------------------------
    ("1,-2", "-2,1", T),
    ("1,-2", "1, -2", T),
    ("1,-2", "1", F),
    ("1,-2", "1,2", F),
    ("1,-2", "x=1, x=-2", T),
    ("1,-2", r"\{1,-2\}", T),
    ("-2,1", r"1 \text{ and } -2", T),
    ("3, 5, 7", "7, 5, 3", T),
    ("3, 5, 7", "3, 5", F),
    ("3, 5, 7", "3, 5, 7, 9", F),
    (r"\{1\pm\sqrt{5},-2\}", r"-2, 1+\sqrt5, 1-\sqrt5", T),
    (r"\{1\pm\sqrt{5},-2\}", r"1\pm\sqrt5, -2", T),
    (r"\{1\pm\sqrt{5},-2\}", r"1+\sqrt5, -2", F),
    (r"1 \pm \sqrt{19}", r"1+\sqrt{19}, 1-\sqrt{19}", T),
    (r"1 \pm \sqrt{19}", r"1+\sqrt{19}", F),
    (r"3 \pm 2 \sqrt{2}", r"3-2\sqrt2, 3+2\sqrt2", T),
    (r"\pm 2021", "2021", F),  # issue #14
    (r"19, 46, \text{ and } 82", "21, 36, and 82", F),  # issue #14
    ("n=2, 3, 4", "n=1, 2, 3", F),  # issue #14
    ("12:00", "1:00", F),  # issue #14
    # --- intervals -------------------------------------------------------------------------------
    (r"(-\infty, 0]", r"(-\infty,0]", T),
    (r"(-\infty, 0]", r"(-\infty, 0)", F),
    (r"(-\infty, 0]", r"x \le 0", T),
    (r"(-\infty, 0]", "x < 0", F),
    ("(3,4]", "(3, 4]", T),
    ("(3,4]", "(3,4)", F),
    ("(3,4]", "[3,4]", F),
    (r"(2,\infty)", "x > 2", T),
    (r"(2,\infty)", r"(2, +\infty)", T),
    (r"(2,\infty)", r"[2,\infty)", F),
    (r"(-\infty, 2) \cup (3, \infty)", r"(3,\infty) \cup (-\infty, 2)", T),
    (r"(-\infty, 2) \cup (3, \infty)", r"(-\infty, 2] \cup (3, \infty)", F),
    (r"(0,9) \cup (9,36)", "(0,36)", F),
    (r"(2,12) \cup (12,102)", r"(2,12)\cup(12,102)", T),
    (r"\left(\frac{3}{5},\frac{8}{3}\right]", "(0.6, 8/3]", T),
    (r"\left(\frac{3}{5},\frac{8}{3}\right]", r"(\frac35, \frac83)", F),
    (r"x \in [-2,7]", "[-2,7]", T),
    (r"x \in [-2,7]", r"-2 \le x \le 7", T),
    (r"x \in [-2,7]", "(-2,7)", F),
    (r"\left[ \frac{\pi^2}{8}, \frac{5 \pi^2}{4} \right]", r"[\pi^2/8, 5\pi^2/4]", T),
    (r"(-\sqrt{3}, \sqrt{3})", r"(-\sqrt3,\sqrt3)", T),
    (r"(-\sqrt{3}, \sqrt{3})", r"-\sqrt3, \sqrt3", F),
    ("[1,2]", "(1,2)", F),
    ("(0, 12.5)", "0 < x < 12.5", T),  # issue #10
    ("D = (0, 1)", "D = (0, 1.5)", F),  # issue #14
    # --- tuples, vectors, matrices ---------------------------------------------------------------
    (r"\left( 3, \frac{\pi}{2} \right)", r"(3,\frac{\pi}{2})", T),
    (r"\left( 3, \frac{\pi}{2} \right)", r"(3, \pi/2)", T),
    (r"\left( 3, \frac{\pi}{2} \right)", r"(\frac{\pi}{2}, 3)", F),
    ("(6,31,-1)", "(6, 31, -1)", T),
    ("(6,31,-1)", "6,31,-1", T),
    ("(6,31,-1)", "(-1,6,31)", F),
    ("(-2,1)", "(-2, 1)", T),
    ("(-2,1)", "(1,-2)", F),
    ("(15,-29)", "(15, -29)", T),
    ("(1,-16,-4,43)", "(1,-16,-4,43)", T),
    ("(1,-16,-4,43)", "(1,-16,-4,42)", F),
    ("(2,4)", "2,4", F),
    (r"\left( \frac{3}{2}, -13 \right)", "(1.5, -13)", T),
    (
        r"\begin{pmatrix} -1/3 \\ 2/3 \\ 5/3 \end{pmatrix}",
        r"\begin{pmatrix} -\frac13 \\ \frac23 \\ \frac53 \end{pmatrix}",
        T,
    ),
    (
        r"\begin{pmatrix} -1/3 \\ 2/3 \\ 5/3 \end{pmatrix}",
        r"\begin{pmatrix} 2/3 \\ -1/3 \\ 5/3 \end{pmatrix}",
        F,
    ),
    (r"\begin{pmatrix} -2 \\ -14 \\ -7 \end{pmatrix}", "(-2,-14,-7)", T),
    (
        r"\begin{pmatrix} -1 & 0 \\ 0 & -1 \end{pmatrix}",
        r"\begin{bmatrix} -1 & 0 \\ 0 & -1 \end{bmatrix}",
        T,
    ),
    (
        r"\begin{pmatrix} -1 & 0 \\ 0 & -1 \end{pmatrix}",
        r"\begin{pmatrix} -1 & 0 \\ 0 & 1 \end{pmatrix}",
        F,
    ),
    (
        r"\begin{pmatrix} -1 & 0 \\ 0 & -1 \end{pmatrix}",
        r"\begin{pmatrix} -1 & 0 & 0 & -1 \end{pmatrix}",
        F,
    ),
    (
        r"\begin{pmatrix} 1/5 \\ -18/5 \end{pmatrix}",
        r"\begin{pmatrix} 0.2 \\ -3.6 \end{pmatrix}",
        T,
    ),
    # --- one answer: hedges, retractions and alternatives are wrong (issue 16) ------------------
    ("6", r"6\text{ (or 7)}", F),
    ("6", r"6\text{ is wrong, the answer is 7}", F),
    ("6", r"6 \quad \text{(or 7, 8, 9)}", F),
    ("6", r"6 \qquad \text{maybe } 7", F),
    ("6", r"6\text{ or more}", F),
    ("6", r"6 \text{ (approximately)}", F),
    ("6", r"\text{either } 6 \text{ or } 7", F),
    ("6", r"6 \text{ or } 7", F),
    ("6", "6 or 7", F),
    ("6", "6, 7", F),
    ("7", r"6\text{ (or 7)}", F),
    ("6", "6 (or 7)", F),
    ("6", "about 6", F),
    ("6", "6 at most", F),
    ("6", "x = 7 = 6", F),
    ("6", "x = 6 = 7", F),
    ("6", "y = 3 + 4 = 6", F),
    ("6", r"\approx 6", F),
    ("6", r"\sim 6", F),
    ("6", r"x \approx 6", F),
    ("6", r"6 \approx 7", F),
    ("6", "6 million", F),
    ("6", "6 dozen", F),
    ("6", r"6\text{ thousand}", F),
    ("6", "6 apples maybe", F),
    ("6", "6, 6", T),  # the same answer twice is one answer
    ("6, 6", "6", T),
    ("1, -2", "1, 1", F),
    ("6", r"6, \frac{12}{2}", T),
    (r"\frac{639}{40}", r"15\frac{39}{40}, \frac{639}{40}", T),
    (r"\frac{639}{40}", r"15\frac{39}{40}, \frac{640}{40}", F),
    (r"\frac{2}{3}", r"\frac{2}{3} \approx 0.67", T),  # an exact value, then its rounding
    (r"\frac{2}{3}", r"\frac{2}{3} \approx 0.666", T),
    (r"\frac{2}{3}", r"\frac{2}{3} \approx 0.76", F),
    (r"\frac{2}{3}", r"\frac{3}{4} \approx 0.67", F),
    (r"2\sqrt{2}", r"2\sqrt{2} \approx 2.83", T),
    (r"\approx 8.24", "8.24", T),  # the gold itself is approximate
    (r"\$\frac23 \approx \$0.67", r"\frac{2}{3}", T),
    # units and labels that do not change the value stay accepted
    ("5", r"5\text{ cm}", T),
    ("3", "x = 3", T),
    ("6", "x = 2 \\cdot 3 = 6", T),
    ("5", r"x = \frac{10}{2} = 5", T),
    ("18", r"18 \text{ dollars}", T),
    ("15", "15 apples", T),
    ("24", "24 red apples", T),
    ("14", r"14 \text{ right triangles}", T),
    ("65", r"65 \text{ children tickets }", T),
    ("15", "16 apples", F),
    # --- labelled answers compare by value --------------------------------------------------------
    ("(p,q)=(3,2)", "(3, 2)", T),
    ("(p,q)=(3,2)", "(2, 3)", F),
    ("(p,q)=(3,2)", "(p, q) = (3, 2)", T),
    ("(3,2)", "(x, y) = (3, 2)", T),
    ("(p,q,r)=(3,2,7)", "(3,2,7)", T),
    ("AB=4,CD=5", "4, 5", T),
    ("AB=4,CD=5", "4, 6", F),
    ("AB=9, CD=4", "AB = 9, CD = 4", T),
    ("|AB| = 10", "10", T),
    (r"\overline{AB} = 10", "11", F),
    (r"\angle ABC = 30^\circ", "30", T),
    (r"m\angle A = 40^\circ", r"40^\circ", T),
    ("V_1:V_2=11:21", "11:21", T),
    ("V_1:V_2=11:21", "21:11", F),
    ("S_{ABC}:S=7:32", "7:32", T),
    (r"\frac{NO}{BO}=\frac{1}{\sqrt{6}}", r"\frac{\sqrt{6}}{6}", T),
    (r"\frac{NO}{BO}=\frac{1}{\sqrt{6}}", r"\frac{1}{6}", F),
    ("f(2) = 9", "9", T),
    ("k = 45, n = 2", "n = 2, k = 45", T),
    ("k = 45, n = 2", "k = 2, n = 45", F),
    ("a_3 = 2, a_{37} = 19", "a_{37} = 19, a_3 = 2", T),
    ("x = -5, p = \\frac{14}{3}", "-5, \\frac{14}{3}", T),
    ("x_1 = 2, x_2 = -7", "x = -7, x = 2", T),  # numbered roots and the plain name
    ("x_1 = 2, x_2 = -7", "x = 7, x = 2", F),
    ("a=1, b=6", "(1, 6)", T),  # assignments to distinct variables are the tuple, in order
    ("a=1, b=6", "(6, 1)", F),
    ("p=5,q=2;p=7,q=2", "(5,2),(7,2)", T),
    ("p=5,q=2;p=7,q=2", "(5,2),(2,7)", F),
    # --- tuples with semicolons, sets with repeats -------------------------------------------------
    ("(0;-2;6)", "(0, -2, 6)", T),
    ("(0;-2;6)", "(0, 2, 6)", F),
    ("(0;0;0),(4;-2;6)", "(4,-2,6),(0,0,0)", T),
    ("-12;-11;-10", r"\{-10, -11, -12\}", T),
    ("-12;-11;-10", r"\{-10, -11\}", F),
    ("2, 3, 5", "5, 3, 3, 2", T),
    ("2, 3, 5", "5, 3, 3", F),
    ("(1,2),(3,4)", "(3,4),(1,2),(3,4)", T),
    ("(11,7)or(7,11)", "(7,11), (11,7)", T),
    # --- inequalities and the intervals they describe ---------------------------------------------
    ("-793 < a < 10", "(-793, 10)", T),
    ("-793 < a < 10", "[-793, 10)", F),
    ("0<f(x)<1", "(0,1)", T),
    ("0<f(x)<1", r"(0,\infty)", F),
    (r"k \ge 2", r"[2, \infty)", T),
    (r"k \ge 2", r"(2, \infty)", F),
    (r"(-\infty, 3)", "t < 3", T),
    # --- words with or without \text{} ------------------------------------------------------------
    (r"\text{odd}", "odd", T),
    (r"\text{odd}", r"\text{even}", F),
    (r"\text{Even}", "Even", T),
    (r"\text{neither}", "Neither", T),
    (r"\text{neither}", "odd", F),
    (r"\text{e}", "e", T),
    (r"\text{d}", r"\text{E}", F),
    # --- numbers too large to compute: never "equal" by overflow ---------------------------------
    ("1", "10^{10^{10^{10}}}", F),
    ("10^{10^{10^{10}}}", "1", F),
    ("0", r"10^{-10^{10}}", F),
]

# (gold, full response, expected reason)
_SOL = "<|begin_of_thought|>\n{t}\n<|end_of_thought|>\n\n<|begin_of_solution|>\n{s}\n<|end_of_solution|>"


def fmt(thought: str, solution: str) -> str:
    return _SOL.format(t=thought, s=solution)


RESPONSES: list[tuple[str, str, str]] = [
    # our format
    ("5", fmt("2+3 is 5.", r"So the answer is $\boxed{5}$."), "correct"),
    ("5", fmt("2+3 is 5.", r"So the answer is $\boxed{6}$."), "wrong"),
    ("3", fmt(r"Maybe \boxed{3}.", r"Checking again, the answer is \boxed{4}."), "wrong"),
    ("3", "<|begin_of_thought|>\nIt could be \\boxed{3}, let me check", "thought_unfinished"),
    (r"\frac{1}{6}", fmt("...", "**Final Answer**\n\\[\n\\boxed{\\dfrac{1}{6}}\n\\]"), "correct"),
    (r"\text{(C)}", fmt("...", r"The answer is $\boxed{\text{(C)}}$."), "correct"),
    (
        r"\text{Evelyn}",
        fmt("...", r"Evelyn has the greatest average speed: $\boxed{\text{Evelyn}}$"),
        "correct",
    ),
    ("1,-2", fmt("...", r"The solutions are $\boxed{1}$ and $\boxed{-2}$."), "correct"),
    ("1,-2", fmt("...", r"The solutions are $\boxed{-2, 1}$."), "correct"),
    (r"(-\infty, 0]", fmt("...", r"$\boxed{(-\infty, 0)}$"), "wrong"),
    (r"10,\!080", fmt("...", r"There are $\boxed{10{,}080}$ ways."), "correct"),
    (r"\$18.90", fmt("...", r"She pays $\boxed{\$18.90}$."), "correct"),
    (r"90^\circ", fmt("...", r"The angle is $\boxed{90^{\circ}}$."), "correct"),
    ("x=5", fmt("...", r"\boxed{x = 5}"), "correct"),
    (r"\frac43", fmt("...", r"\boxed{1.33}"), "wrong"),
    ("4210_{5}", fmt("...", r"In base 5 this is $\boxed{4210_5}$."), "correct"),
    (
        r"\begin{pmatrix} -1 & 0 \\ 0 & -1 \end{pmatrix}",
        fmt("...", r"$\boxed{\begin{pmatrix}-1&0\\0&-1\end{pmatrix}}$"),
        "correct",
    ),
    ("5", fmt("...", "I could not finish."), "no_answer"),
    ("5", fmt("...", r"So the answer is \boxed{"), "no_answer"),
    ("5", fmt("...", r"Draft \boxed{5}, and finally \boxed{"), "no_answer"),
    ("5", fmt("...", r"\boxed{}"), "no_answer"),
    # R1 style
    (
        "204",
        "<think>\nLet me compute... 12*17 = 204.\n</think>\n\nThe answer is $\\boxed{204}$.",
        "correct",
    ),
    ("204", "<think>\nLet me compute... maybe \\boxed{204}", "thought_unfinished"),
    ("204", "<think>\n12*17 = 204, so \\boxed{204}\n</think>\n\n", "no_answer"),
    (
        "73",
        "<think>...</think>\n\nLeft: 437 + 2*234 = 905\n\n✅ Final Answer: **73**",
        "correct",
    ),  # issue #76
    (
        "840",
        "<think>ok</think>\ncould answer therefore\\boxed{840}.,but let me put this after explain.\n\n**Final Answer**\n\\boxed{840}",
        "correct",
    ),  # issue #44
    (
        "4",
        "<think>ok</think>\nthe answer should be \\boxed{004}.\n\nSo, \\boxed{004} is the correct answer.\n\n**Final Answer**\n\\boxed{004}",
        "correct",
    ),  # issue #44
    (
        "9",
        "Final Answer:\n The last three digits of \\(2003^{2002^{2001}}\\) are:\n \\[Answer: 009\\]",
        "correct",
    ),
    # Minerva and plain chat answers
    (
        r"\frac{3}{4}",
        "Final Answer: The final answer is $\\frac{3}{4}$. I hope it is correct.",
        "correct",
    ),
    ("0.75", "Final Answer: The final answer is $\\frac{3}{4}$. I hope it is correct.", "correct"),
    (r"\frac72", "Adding up, the answer is 3.5.", "correct"),
    ("5", "Therefore, the answer is $x = 5$.", "correct"),
    (r"\$18.90", "Answer: $\\$18.90$", "correct"),
    ("4", "The difference is 8 - 4.\n\n**Answer:** 4.", "correct"),
    ("7", "I have no idea.", "no_answer"),
    # GSM8K
    (
        "72",
        "Natalia sold 48/2 = <<48/2=24>>24 clips in May.\nAltogether 48+24 = <<48+24=72>>72.\n#### 72",
        "correct",
    ),
    ("1000", "So in total she earns $1,000.\n#### 1,000", "correct"),
    ("18", "Janet makes 9 * 2 = $18 every day.\n#### $18", "correct"),
    ("18", "Janet makes 9 * 2 = $18 every day.\n#### 16", "wrong"),
    ("-10", "The change is -10 degrees.\n#### -10", "correct"),
    # answers that cannot be read as math
    (r"\frac{1}{2}", r"\boxed{\frac{1}{}}", "unparseable"),
    # one answer (issue 16): a boxed answer that hedges is wrong
    ("6", fmt("...", r"So the answer is $\boxed{6\text{ (or 7)}}$."), "wrong"),
    ("6", fmt("...", r"$\boxed{6\text{ is wrong, the answer is 7}}$"), "wrong"),
    ("6", fmt("...", r"\[\boxed{6 \quad \text{(or 7, 8, 9)}}\]"), "wrong"),
    ("6", fmt("...", r"Hence $\boxed{x = 7 = 6}$."), "wrong"),
    ("6", fmt("...", r"The count is $\boxed{\approx 6}$."), "wrong"),
    ("6", fmt("...", r"It is $\boxed{6}$ or $\boxed{7}$."), "wrong"),
    ("7", fmt("...", r"It is $\boxed{6}$ or $\boxed{7}$."), "wrong"),
    ("7", fmt("...", "It is $\\boxed{6}$\n\n$\\boxed{7}$"), "wrong"),
    ("7", fmt("...", "It is $\\boxed{7}$\n\n$\\boxed{7}$"), "correct"),
    (r"\frac{639}{40}", r"So $\boxed{15\frac{39}{40}}$, or $\boxed{\frac{639}{40}}$.", "correct"),
    ("6", fmt("...", r"So the count is $\boxed{6}$ (or 7)."), "wrong"),  # offered outside the box
    ("7", fmt("...", r"So the count is $\boxed{6}$ (or 7)."), "wrong"),
    (r"\frac{639}{40}", r"so $\boxed{\frac{639}{40}}$, or $15.975$.", "correct"),
    ("5", fmt("...", r"The side is $\boxed{5\text{ cm}}$."), "correct"),
    ("18", fmt("...", r"She pays $\boxed{18 \text{ dollars}}$."), "correct"),
    # several boxes meant together, where the gold has several parts
    ("(3, 3), (1, 1)", r"$$\boxed{(3, 3)} \text{ for part (a) and } \boxed{(1, 1)}$$", "correct"),
    ("(3, 3), (1, 1)", r"$$\boxed{(3, 3)} \text{ for part (a) and } \boxed{(2, 1)}$$", "wrong"),
    ("(2, 2), (6, 2)", r"$$\boxed{(2, 2)} \quad \text{and} \quad \boxed{(6, 2)}$$", "correct"),
    ("k = 45, n = 2", r"$\boxed{k = 45}$ \quad and \quad $\boxed{n = 2}$", "correct"),
    ("1, 2", r"Either \boxed{1} no no no no, \boxed{2}", "wrong"),
    (
        "y_1 = 2x + 1, y_2 = x^2",
        r"So \(y_1 = \boxed{2x + 1}\) and \(y_2 = \boxed{x^2}\).",
        "correct",
    ),
    # no box and no "answer is": the last mathematical expression is the answer
    ("(3,2)", fmt("...", "Solving the system, the pair is $(3,2)$"), "correct"),
    ("(3,2)", fmt("...", "Solving the system, the pair is $(2,3)$"), "wrong"),
    ("1", "The limit equals\n$$1$$", "correct"),
    ("9", "Answer $ 9 $", "correct"),
    ("9", "Answer $ 8 $", "wrong"),
    ("(p,q)=(3,2)", "so we get $(3,2)$", "correct"),
    ("-4, 6", "The roots are $x = -4$ or $x = 6$.", "correct"),
    ("-4, 6", "The roots are $x = -4$ or $x = 5$.", "wrong"),
    ("6", "We find $a = 2$ and $b = 6$.", "wrong"),  # two values: which one is the answer?
    ("6", "We find $a = 2$, so $b = 6$.", "correct"),
    ("-793 < a < 10", r"Therefore $a \in (-793, 10)$.", "correct"),
    ("(0,1)", r"So the range is $$0<f(x)<1$$", "correct"),
    (r"\text{odd}", r"so $f$ is $odd$", "correct"),
    (r"\text{odd}", r"so $f$ is $even$", "wrong"),
    ("24", "Adding the two groups, the total is **24**.", "correct"),
    ("24", "Adding the two groups, the total is **25**.", "wrong"),
    ("15", "so the answer is 15 apples.", "correct"),
    ("15", "so the answer is 15 apples or so.", "wrong"),
    ("18", "The answer is 18 dollars.", "correct"),
    ("5", "She has 5 apples left.", "no_answer"),  # prose numbers are not guessed
    ("5", "It costs $5 and then $6 more.", "no_answer"),  # money, not math
    ("5", "We get $x = 5$ but then ** wait", "correct"),
]


def perturb(answer: str) -> str:
    """A copy of a gold answer with a different value: the first digit moved by one; for
    answers without digits, the next choice letter, a changed word, or ``+1``."""
    m = re.search(r"\d", answer)
    if m:
        d = int(m.group(0))
        return answer[: m.start()] + str(d + 1 if d < 9 else d - 1) + answer[m.end() :]
    m = re.fullmatch(r"\\text\{\(([A-I])\)\}", answer)
    if m:
        return rf"\text{{({chr(ord(m.group(1)) + 1)})}}"
    m = re.fullmatch(r"\\text\{(\w+)\}", answer)
    if m:
        return rf"\text{{{m.group(1)}x}}"
    return rf"\left({answer}\right)+1"
