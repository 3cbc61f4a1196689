"""The longest run of words two texts share, in time linear in their lengths (a suffix automaton).

The leak check asks which run of the completion's words appears in a prompt field. `difflib.SequenceMatcher`
answers the same question but costs the product of the two lengths on repeated words (50,000 × "a" took minutes),
so one pasted text could hold a web worker. Here the automaton of the completion's words is built once (at most
2n states and 3n transitions for n words, each added in amortised constant time) and each source is read through it
word by word, so a check costs O(completion + sources) whatever the words are.

Results equal `SequenceMatcher(None, a, b, autojunk=False).find_longest_match()` on (size, start in a): of the
longest common runs, the one that starts earliest in the completion.
"""

from collections.abc import Hashable, Iterable, Sequence


class LongestRun:
    """The suffix automaton of `words`; `longest_in(source)` gives the longest run of them found in a source.

    `steps` counts the automaton's work (transitions added or followed, suffix links walked) so that tests can
    check it stays linear: at most a small multiple of the words read.
    """

    __slots__ = ("first_end", "length", "link", "source_end", "steps", "transitions")

    def __init__(self, words: Sequence[Hashable]) -> None:
        # State 0 is the empty run. For each state: the length of its longest run, its suffix link, its transitions
        # (word -> state), and the position where its runs first end in `words` (to say where the run starts).
        length, link, transitions, first_end = [0], [-1], [{}], [-1]
        steps = 0
        last = 0
        for position, word in enumerate(words):
            current = len(length)
            length.append(length[last] + 1)
            link.append(0)
            transitions.append({})
            first_end.append(position)
            state = last
            while state != -1 and word not in transitions[state]:
                transitions[state][word] = current
                state = link[state]
                steps += 1
            if state != -1:
                target = transitions[state][word]
                if length[state] + 1 == length[target]:
                    link[current] = target
                else:
                    clone = len(length)
                    length.append(length[state] + 1)
                    link.append(link[target])
                    transitions.append(dict(transitions[target]))
                    first_end.append(first_end[target])
                    steps += len(transitions[target])
                    while state != -1 and transitions[state].get(word) == target:
                        transitions[state][word] = clone
                        state = link[state]
                        steps += 1
                    link[target] = link[current] = clone
            last = current
        self.length, self.link, self.transitions, self.first_end = length, link, transitions, first_end
        self.steps = steps
        self.source_end = 0

    def longest_in(self, source: Iterable[Hashable]) -> tuple[int, int]:
        """(size, start): the longest run of the automaton's words found in `source`, and where it first starts in
        them (of equally long runs, the earliest); (0, 0) when no word is shared. `source_end` is then the position
        in `source` just after that run (where it was first found)."""
        length, link, transitions, first_end = self.length, self.link, self.transitions, self.first_end
        state = size = best = best_start = best_end = 0
        steps = 0
        for position, word in enumerate(source):
            # Walk up the suffix links until a state can be extended by `word` (amortised: each walk shortens the
            # current run, which grows by at most one per word read).
            while state and word not in transitions[state]:
                state = link[state]
                size = length[state]
                steps += 1
            following = transitions[state].get(word)
            if following is None:
                state = size = 0
            else:
                state = following
                size += 1
            steps += 1
            if size and size >= best:
                start = first_end[state] - size + 1
                if size > best or start < best_start:
                    best, best_start, best_end = size, start, position + 1
        self.steps += steps
        self.source_end = best_end
        return best, best_start
