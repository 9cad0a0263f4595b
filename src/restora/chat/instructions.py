"""What a person types in a restoration chat, turned into constraints for the heuristic planner.

:func:`parse` is a pure function: it maps words and short phrases (with their synonyms, British and
American spellings, and near-miss typos through :func:`difflib.get_close_matches`) onto the task
and tool names of the registry, clause by clause, and hands back whatever it could not map, in the
person's own words, in :attr:`Instructions.not_understood`. It never guesses silently: a clause
with a word it does not know is said back rather than half-applied.

Examples:
    >>> from restora.chat.instructions import parse
    >>> ins = parse("remove the rain but keep the grain and brighten it a bit")
    >>> [t.value for t in ins.do], ins.keep_grain
    (['derain', 'low_light'], 0.3)
    >>> parse("use bm3d, no AI upscaling").avoid_tools
    ['sr_realesrgan', 'sr_srmd', 'sr_swinir']
    >>> parse("make it pop").summary()
    "I did not understand: 'make it pop'."
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field
from functools import cache
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from restora.taxonomy import Task

Command = Literal["undo", "redo", "reset", "stop", "compare"]

STRENGTH_UP, STRENGTH_UP_MUCH = 1.3, 1.6
STRENGTH_DOWN, STRENGTH_DOWN_MUCH = 0.7, 0.5
GRAIN_SOME, GRAIN_LITTLE, GRAIN_LOTS = 0.3, 0.15, 0.5


class Instructions(BaseModel):
    """Constraints for the planner, read from one chat message.

    Examples:
        >>> Instructions(do=[Task.DENOISE], only=True).summary()
        'I will denoise, and nothing else.'
    """

    model_config = ConfigDict(strict=True, extra="forbid")

    do: list[Task] = Field(default_factory=list, description="tasks asked for, in the order said")
    avoid: list[Task] = Field(default_factory=list, description="tasks not to run")
    only: bool = Field(False, description="run only the tasks in `do`")
    strength: float = Field(1.0, gt=0.0, le=4.0, description="multiplier on tool strength; 1 is neutral")
    keep_grain: float = Field(0.0, ge=0.0, le=1.0, description="share of the removed noise to put back")
    use_tools: list[str] = Field(default_factory=list, description="registered tools to prefer")
    avoid_tools: list[str] = Field(default_factory=list, description="registered tools not to run")
    command: Command | None = Field(None, description="a session command instead of (or with) a request")
    compare_task: Task | None = Field(None, description="the task whose tools to compare side by side")
    preserve: list[str] = Field(default_factory=list, description="what to leave as it is: colours, faces, ...")
    not_understood: list[str] = Field(
        default_factory=list, description="the parts of the message not mapped, in the person's words"
    )

    @field_validator("use_tools", "avoid_tools")
    @classmethod
    def _registered(cls, names: list[str]) -> list[str]:
        known = _tool_classes()
        for name in names:
            if name not in known:
                close = difflib.get_close_matches(name, list(known), n=3)
                hint = f"; did you mean {', '.join(close)}?" if close else ""
                raise ValueError(f"unknown tool {name!r}{hint}")
        return names

    def summary(self) -> str:
        """A plain English sentence saying what was understood, and what was not.

        Examples:
            >>> parse("denoise, but keep a little grain").summary()
            'I will denoise; put back 15% of the removed grain.'
        """
        parts: list[str] = []
        if self.command == "compare":
            what = _TASK_WORDS[self.compare_task] if self.compare_task else "the last step"
            parts.append(f"I will compare the tools for {what}")
        elif self.command:
            parts.append(f"I will {_COMMAND_WORDS[self.command]}")
        if self.do:
            tail = ", and nothing else" if self.only else ""
            parts.append(f"I will {_join([_TASK_WORDS[t] for t in self.do])}{tail}")
        if self.avoid:
            parts.append(f"I will not {_join([_TASK_WORDS[t] for t in self.avoid], 'or')}")
        if self.strength > 1.0:
            parts.append(f"work harder ({self.strength:g}x strength)")
        elif self.strength < 1.0:
            parts.append(f"work more gently ({self.strength:g}x strength)")
        if self.keep_grain:
            parts.append(f"put back {round(self.keep_grain * 100)}% of the removed grain")
        if self.use_tools:
            parts.append(f"use {_join(self.use_tools)}")
        if self.avoid_tools:
            parts.append(f"not use {_join(self.avoid_tools, 'or')}")
        if self.preserve:
            parts.append(f"leave the {_join(self.preserve)} as they are")
        said = "; ".join(parts)
        if said:
            said = said[0].upper() + said[1:] + "."
        if self.not_understood:
            quoted = ", ".join(f"'{p}'" for p in self.not_understood)
            said = f"{said} I did not understand: {quoted}.".strip()
        return said or "I did not find a request in that."


def _join(words: list[str], last: str = "and") -> str:
    return words[0] if len(words) == 1 else f"{', '.join(words[:-1])} {last} {words[-1]}"


_TASK_WORDS = {
    Task.DENOISE: "denoise",
    Task.MOTION_DEBLUR: "remove motion blur",
    Task.DEFOCUS_DEBLUR: "remove defocus blur",
    Task.DEHAZE: "dehaze",
    Task.DERAIN: "remove rain",
    Task.LOW_LIGHT: "brighten",
    Task.DEJPEG: "remove JPEG artifacts",
    Task.SUPER_RESOLUTION: "upscale",
}
_COMMAND_WORDS = {"undo": "undo the last step", "redo": "redo the step undone", "reset": "start again from the original", "stop": "stop here"}

# ----------------------------------------------------------------------------------------------
# Vocabulary: phrase -> (kind, value). Kinds:
#   noun / verb   a task (value: tasks); a noun names the degradation, a verb the repair
#   grain         film grain (denoise when removed, keep_grain when kept)
#   dual          a quality that is a task when asked for and a thing to preserve when kept
#   neg keep only remove use show other compare cmd up down toomuch still amount small big all
#   ai classical  learned / classical tool groups;  tool  tool names;  preserve  a preserved thing
#   sep           a clause boundary;  filler  a word that carries no request on its own
# ----------------------------------------------------------------------------------------------

_D, _MB, _DB = Task.DENOISE, Task.MOTION_DEBLUR, Task.DEFOCUS_DEBLUR
_BLUR = frozenset({_MB, _DB})
_PHRASES: dict[tuple[str, ...], tuple[str, object]] = {}


def _add(kind: str, value: object, *phrases: str) -> None:
    for p in phrases:
        _PHRASES[tuple(p.split())] = (kind, value)


def _tasks(*tasks: Task) -> frozenset[Task]:
    return frozenset(tasks)


_add("noun", _tasks(_D), "noise", "noisy", "noisiness", "speckle", "speckles", "speckled", "speckling",
     "static", "salt and pepper", "sensor noise", "iso noise", "high iso", "chroma noise", "colour noise",
     "color noise", "luminance noise", "denoisers", "denoiser")
_add("verb", _tasks(_D), "denoise", "denoising", "denoised", "smooth", "smoothing", "smoothen", "smooth out")
_add("grain", _tasks(_D), "grain", "grainy", "graininess", "film grain")
_add("noun", _tasks(_MB), "shake", "shaky", "shaking", "shaken", "motion", "movement", "jitter", "camera shake",
     "hand shake", "motion blur", "motion blurred", "smear", "smeared", "smeary", "moving")
_add("noun", _tasks(_DB), "defocus", "defocused", "defocussed", "unfocused", "unfocussed", "misfocused",
     "out of focus", "focus", "lens blur", "focus blur", "soft focus", "defocus blur")
_add("verb", _tasks(_DB), "refocus")
_add("noun", _BLUR, "blur", "blurry", "blurred", "blurriness", "blurring", "blurrers", "deblurrers", "unsharp")
_add("verb", _BLUR, "deblur", "deblurring", "unblur", "sharpen", "sharpening", "sharpened", "sharper")
_add("dual", ("sharpness", _BLUR), "sharpness")
_add("noun", _tasks(Task.DEHAZE), "haze", "hazy", "haziness", "fog", "foggy", "fogginess", "mist", "misty",
     "smog", "smoggy", "murky", "murk", "washed out")
_add("verb", _tasks(Task.DEHAZE), "dehaze", "dehazing", "defog", "defogging", "clear the air")
_add("noun", _tasks(Task.DERAIN), "rain", "rainy", "raining", "raindrops", "rain drops", "drops", "droplets",
     "streaks", "streaky", "drizzle", "rain streaks", "water drops", "water droplets")
_add("verb", _tasks(Task.DERAIN), "derain", "deraining")
_add("noun", _tasks(Task.LOW_LIGHT), "dark", "darkness", "dim", "dimly", "underexposed", "under exposed",
     "underexposure", "too dark", "low light", "lowlight", "night", "shadows", "exposure", "brightness", "gloomy")
_add("verb", _tasks(Task.LOW_LIGHT), "brighten", "brightening", "brightened", "brighter", "lighten",
     "lightening", "lighter", "light up", "light it up", "more light", "illuminate", "expose", "exposed")
_add("noun", _tasks(Task.DEJPEG), "jpeg", "jpg", "jpegs", "blocky", "blockiness", "blocks", "blocking",
     "compression", "compressed", "artifacts", "artefacts", "artifact", "artefact", "ringing", "mosquito",
     "compression artifacts", "compression artefacts", "jpeg artifacts", "jpeg artefacts", "macroblocking")
_add("verb", _tasks(Task.DEJPEG), "deblock", "deblocking", "dejpeg")
_add("noun", _tasks(Task.SUPER_RESOLUTION), "resolution", "low resolution", "low res", "lowres", "pixelated",
     "pixellated", "pixelation", "pixelly", "pixely", "too small", "size", "upscalers")
_add("verb", _tasks(Task.SUPER_RESOLUTION), "upscale", "upscaling", "upscaled", "upscaler", "upsample",
     "upsampling", "upres", "enlarge", "enlarging", "enlarged", "bigger", "larger", "super resolution",
     "super res", "superres", "sr", "higher resolution", "high resolution", "hi res", "hires", "more resolution",
     "increase the resolution", "2x", "4x", "x2", "x4", "double the size", "zoom")

_add("neg", None, "no", "not", "dont", "do not", "doesnt", "does not", "never", "avoid", "skip", "nor",
     "neither", "cant", "wont", "shouldnt", "leave out", "no more", "instead of", "rather than", "stop using")
_add("neg", "without", "without")
_add("keep", None, "keep", "keeping", "preserve", "preserving", "retain", "maintain", "protect", "leave",
     "hold on to", "careful with", "be careful with", "respect", "put back", "bring back", "add back")
_add("keep", None, "fine", "is fine", "looks fine", "look fine", "are fine", "is ok", "are ok", "as it is",
     "as they are")
_add("add", None, "add", "put", "bring", "adding")
_add("only", None, "only", "just", "solely", "exclusively")
_add("only", "global", "nothing else", "nothing more", "and nothing else", "nothing but")
_add("remove", None, "remove", "removing", "fix", "fixing", "clean", "cleanup", "clean up", "reduce",
     "reducing", "get rid of", "eliminate", "kill", "take out", "clear", "correct", "repair", "deal with",
     "tackle", "cut", "improve", "restore", "enhance", "suppress", "erase", "lift", "treat", "address", "handle")
_add("use", None, "use", "using", "try", "with", "via", "prefer", "switch to", "go with", "run", "apply")
_add("show", None, "show", "see", "view", "display")
_add("other", None, "other", "others", "another", "different", "options")
_add("compare", None, "compare", "comparison", "side by side", "alternatives", "alternative")
_add("cmd", "undo", "undo", "revert", "go back", "take that back", "roll back", "rollback", "step back",
     "previous version", "back to the previous")
_add("cmd", "redo", "redo", "redo that")
_add("cmd", "reset", "reset", "start over", "start again", "from scratch", "back to the original", "restart")
_add("cmd", "stop", "stop", "halt", "cancel", "abort", "thats enough", "enough", "good enough", "looks good",
     "im done", "done", "perfect", "leave it there", "that will do", "thatll do")
_add("up", None, "more", "stronger", "harder", "aggressive", "aggressively", "heavier", "heavily", "increase",
     "boost", "crank up", "crank it up", "turn it up", "turn up", "push", "intensify", "strengthen",
     "bump up", "go further", "further", "not enough", "so much", "so hard", "so strong")
_add("down", None, "less", "gentler", "gentle", "gently", "softer", "milder", "mild", "lighter touch",
     "light touch", "subtler", "subtle", "subtly", "weaker", "weaken", "tone down", "tone it down",
     "dial back", "dial it back", "back off", "ease off", "ease up", "lower", "decrease", "softly",
     "conservative", "conservatively", "reduce the strength", "lower the strength", "reduce strength",
     "lower strength", "fewer")
_add("toomuch", None, "too much", "too strong", "too aggressive", "overdone", "overdo", "overdo it",
     "overprocessed", "over processed", "too smooth", "plastic", "plasticky", "waxy", "too far", "overcooked",
     "over the top", "oversmoothed", "over smoothed", "oversharpened", "too sharp")
_add("still", None, "still")
_add("amount", GRAIN_SOME, "some", "a bit of some")
_add("small", GRAIN_LITTLE, "a bit", "bit", "a little", "little", "slightly", "slight", "a tad", "tad",
     "a touch", "a touch of", "a hint of", "hint", "somewhat", "a little bit", "a bit of", "a little of")
_add("big", GRAIN_LOTS, "much", "a lot", "a lot of", "lots", "lots of", "way", "far", "loads", "loads of",
     "heaps", "plenty of", "significantly", "considerably", "really", "very", "alot", "tons", "massively")
_add("all", None, "all", "all the", "all of the", "every bit")
_add("ai", None, "ai", "a i", "neural", "neural net", "neural network", "neural networks", "deep learning",
     "machine learning", "ml", "learned", "learning based", "gan", "generative", "ai based")
_add("classical", None, "classical", "classic", "traditional", "non ai", "non neural", "old school",
     "conventional")
_add("preserve", "colours", "colour", "colours", "color", "colors", "hue", "hues", "saturation",
     "white balance", "tones", "tint")
_add("preserve", "faces", "face", "faces", "facial", "people", "portrait", "eyes")
_add("preserve", "skin", "skin", "skin tones", "skin tone")
_add("preserve", "text", "text", "lettering", "letters", "writing", "words", "signs", "sign", "numbers",
     "license plate", "licence plate", "logo", "logos")
_add("preserve", "details", "detail", "details", "fine detail", "fine details", "texture", "textures")
_add("preserve", "edges", "edges", "lines", "outlines")
_add("preserve", "sky", "sky")
_add("preserve", "background", "background")
_add("preserve", "contrast", "contrast")
_add("preserve", "mood", "mood", "atmosphere", "vibe", "feel")
_add("sep", None, "but", "and", "then", "also", "while", "plus", "though", "although", "however", "yet", "or",
     "after that", "and then", ".", ",", ";", ":", "!", "?")

_FILLER = set(
    """the a an it its this that thats these those image photo picture pic shot please pls can could would
    will shall should you u i me my we us make makes making do does is are be was were to of for in on at up
    down out off from too so as now again go lets let want wanted like need id im ok okay thanks thank there
    here get rid some any anything everything thing things stuff one step last previous result same what how
    about instead rather kind sort bits parts part areas area region regions around over entire whole level
    amount than before after original alone intact untouched natural naturally unchanged touch touching
    change changing changed alter altering mess messing modify affect affecting ruin ruining lose losing
    destroy damage wash hey hi oh well yeah yes maybe perhaps think looks look looking bit try trying back
    strength effect processing filtering intensity away main gain again pain train brain plain rest much
    them they he she his her their version everywhere anywhere mostly also just really hmm um uh ah""".split()
)

_TOOL_ALIASES = {
    "bm3d": "denoise_bm3d", "nlm": "denoise_nlm", "non local means": "denoise_nlm", "nl means": "denoise_nlm",
    "scunet": "denoise_scunet", "waifu2x": "dejpeg_waifu2x", "waifu": "dejpeg_waifu2x",
    "fbcnn": "dejpeg_fbcnn", "esrgan": "sr_realesrgan", "realesrgan": "sr_realesrgan",
    "real esrgan": "sr_realesrgan", "swinir": "sr_swinir", "clahe": "dehaze_clahe", "dcp": "dehaze_dcp",
    "dark channel": "dehaze_dcp", "dark channel prior": "dehaze_dcp", "lime": "lowlight_lime",
    "gamma": "lowlight_gamma", "gamma correction": "lowlight_gamma", "dit": "dit_restore",
    "qwen": "dit_restore", "diffusion": "dit_restore", "diffusion model": "dit_restore",
}


@cache
def _tool_classes() -> dict:
    from restora.tools import list_tools

    return list_tools()


@cache
def _vocabulary() -> tuple[dict[tuple[str, ...], tuple[str, object]], tuple[str, ...]]:
    """The phrase table with the registry's tool names added, and every known word (for typos)."""
    table = dict(_PHRASES)
    tools = _tool_classes()
    for name in tools:
        table[tuple(name.split("_"))] = ("tool", (name,))
    for alias, name in _TOOL_ALIASES.items():
        if name in tools:
            table[tuple(alias.split())] = ("tool", (name,))
    srmd = tuple(n for n in ("denoise_srmd", "sr_srmd") if n in tools)
    if srmd:
        table[("srmd",)] = ("tool", srmd)
    words = {w for phrase in table for w in phrase if w.isalpha()} | _FILLER
    return table, tuple(sorted(words))


def _learned(tasks: frozenset[Task] | None = None) -> list[str]:
    """Learned tools, all of them or those for ``tasks`` (a multi-task tool only with all of them)."""
    return sorted(
        n
        for n, t in _tool_classes().items()
        if t.learned and (tasks is None or (set(t.handles()) & tasks and not t.multi_task()))
    )


# ----------------------------------------------------------------------------------------------
# Parsing
# ----------------------------------------------------------------------------------------------

_TOKEN = re.compile(r"[a-z0-9]+(?:['’][a-z]+)?|[.,;:!?]", re.IGNORECASE)
_MAX_PHRASE = 5


@dataclass
class _Item:
    kind: str
    value: object
    start: int
    end: int


@dataclass
class _State:
    do: list[Task] = field(default_factory=list)
    avoid: list[Task] = field(default_factory=list)
    use_tools: list[str] = field(default_factory=list)
    avoid_tools: list[str] = field(default_factory=list)
    only: bool = False
    only_global: bool = False
    strength: float = 1.0
    keep_grain: float = 0.0
    command: str | None = None
    compare_task: Task | None = None
    preserve: list[str] = field(default_factory=list)
    not_understood: list[str] = field(default_factory=list)

    def want(self, tasks: frozenset[Task] | object) -> None:
        for t in _ordered(tasks):
            if t in self.avoid:
                self.avoid.remove(t)
            if t not in self.do:
                self.do.append(t)

    def refuse(self, tasks: frozenset[Task] | object) -> None:
        for t in _ordered(tasks):
            if t in self.do:
                self.do.remove(t)
            if t not in self.avoid:
                self.avoid.append(t)

    def tools(self, names: list[str], use: bool) -> None:
        mine, other = (self.use_tools, self.avoid_tools) if use else (self.avoid_tools, self.use_tools)
        for n in names:
            if n in other:
                other.remove(n)
            if n not in mine:
                mine.append(n)


def _ordered(tasks: object) -> list[Task]:
    return [t for t in Task if t in tasks]  # type: ignore[operator]


def _normal(word: str) -> str:
    return word.lower().replace("’", "").replace("'", "")


def _correct(word: str, vocab: tuple[str, ...], known: set[str]) -> str:
    """The vocabulary word a typo most likely meant (same first letter), else the word itself."""
    if word in known or len(word) < 4 or not word.isalpha():
        return word
    meaningful = [w for w in vocab if w not in _FILLER]
    for pool in (meaningful, sorted(_FILLER)):  # a request word first: "rian" is rain, not ruin
        for cand in difflib.get_close_matches(word, pool, n=3, cutoff=0.75):
            if cand[0] == word[0]:
                return cand
    return word


def _items(text: str) -> list[_Item]:
    table, vocab = _vocabulary()
    known = set(vocab)
    toks = [(m.start(), m.end(), _correct(_normal(m.group()), vocab, known)) for m in _TOKEN.finditer(text)]
    items: list[_Item] = []
    i = 0
    while i < len(toks):
        for n in range(min(_MAX_PHRASE, len(toks) - i), 0, -1):
            hit = table.get(tuple(t[2] for t in toks[i : i + n]))
            if hit:
                items.append(_Item(hit[0], hit[1], toks[i][0], toks[i + n - 1][1]))
                i += n
                break
        else:
            word = toks[i][2]
            items.append(_Item("filler" if word in _FILLER else "unknown", word, toks[i][0], toks[i][1]))
            i += 1
    return items


def _clauses(items: list[_Item]) -> list[list[_Item]]:
    out: list[list[_Item]] = [[]]
    for it in items:
        if it.kind == "sep" or (it.kind == "neg" and it.value == "without"):
            if out[-1]:
                out.append([])
            if it.kind == "sep":
                continue
        out[-1].append(it)
    return [c for c in out if c]


_TASK_KINDS = ("noun", "verb", "grain")
_HEAD_KINDS = {"verb", "remove", "use", "only", "up", "down", "toomuch", "cmd", "tool", "ai", "classical",
               "still", "compare", "neg", "keep"}


def _clause(items: list[_Item], st: _State, prev_mode: str, text: str) -> str:
    kinds = [it.kind for it in items]
    done: set[int] = set()  # items whose meaning was used
    bad: set[int] = {i for i, k in enumerate(kinds) if k == "unknown"}

    def where(*ks: str) -> list[int]:
        return [i for i, k in enumerate(kinds) if k in ks]

    task_idx = where(*_TASK_KINDS)
    big = bool(where("big"))

    # the clause's mode: asking for something, refusing it, or keeping it
    if where("cmd") and task_idx and any(items[i].value == "stop" for i in where("cmd")):
        for i in where("cmd"):
            kinds[i] = "neg"  # "stop denoising" refuses a task
    for i in where("add"):  # "add some grain back" keeps grain; "add more light" asks for a task
        kinds[i] = "keep" if where("grain") else "remove"
    if where("neg"):
        mode = "neg"
    elif where("keep") and (where("noun", "grain", "preserve", "dual") or not where("verb")):
        mode = "keep"
    elif any(k in _HEAD_KINDS for k in kinds):
        mode = "pos"
    else:
        mode = prev_mode
    done.update(where("neg", "keep", "remove", "use", "small", "big", "amount", "all"))

    # commands
    cmd_here = bool(where("cmd"))
    for i in where("cmd"):
        st.command = str(items[i].value)
        done.add(i)
        for j in task_idx:
            if items[j].value and st.command in ("undo", "reset"):
                st.refuse(items[j].value)
            done.add(j)
    if where("compare") or (where("other") and where("show")):
        st.command = "compare"
        done.update(where("compare", "other", "show"))
        tasks = [t for j in task_idx for t in _ordered(items[j].value)]
        tasks += [t for j in where("tool") for n in items[j].value for t in _tool_classes()[n].handles()]
        st.compare_task = tasks[0] if tasks else None
        done.update(task_idx + where("tool"))
        cmd_here = True
    if cmd_here and all(i in done for i in task_idx):
        return _report(items, done, bad, st, text, mode)

    # learned / classical tool groups ("no AI upscaling", "classical only")
    for i in where("ai"):
        tasks = frozenset(t for j in task_idx for t in _ordered(items[j].value))
        st.tools(_learned(tasks or None), use=mode == "pos")
        if mode == "pos":
            st.want(tasks)
        done.update([i, *task_idx])
    for i in where("classical"):
        if mode == "pos":
            st.tools(_learned(), use=False)
        done.add(i)

    # named tools
    clause_tasks = {t for j in task_idx for t in _ordered(items[j].value)}
    for i in where("tool"):
        names = list(items[i].value)  # type: ignore[call-overload]
        if len(names) > 1 and clause_tasks:  # "srmd" for denoising or for upscaling
            names = [n for n in names if set(_tool_classes()[n].handles()) & clause_tasks] or names
        st.tools(names, use=mode != "neg")
        if mode != "neg" and len(names) == 1:
            st.want(_tool_classes()[names[0]].handles())
        done.add(i)
        if mode == "neg":
            done.update(task_idx)  # "don't use bm3d for denoising" does not refuse denoising

    if mode == "pos":
        bad.update(where("preserve"))  # "fix the colours", "more contrast": no task does that
    if where("ai", "classical", "tool"):
        done.update(where("only"))  # "classical only", "only use bm3d"

    # strength: "a bit more", "gentler", "less smoothing", "not so strong"; not "less noise"
    dirs = where("up", "down", "toomuch", "still")
    if dirs and bad:
        bad.update(dirs)  # "more contrast": a request we cannot map, said back whole
    elif dirs:
        for i in dirs:
            nxt = next((j for j in range(i + 1, len(items)) if kinds[j] not in ("filler", "small", "big", "all")), None)
            done.add(i)
            if kinds[i] in ("down", "toomuch") and nxt is not None and kinds[nxt] in ("noun", "grain"):
                st.want(items[nxt].value)  # "less noise", "too much grain"
                done.add(nxt)
                continue
            if kinds[i] == "up" and nxt is not None and kinds[nxt] == "grain" and mode != "neg":
                st.keep_grain = GRAIN_LOTS  # "more grain"
                done.add(nxt)
                continue
            up = kinds[i] in ("up", "still")
            if mode == "neg" and kinds[i] != "toomuch":
                up = not up  # "not so strong", "don't be so gentle"
            if up:
                st.strength = STRENGTH_UP_MUCH if big else STRENGTH_UP
            else:
                st.strength = STRENGTH_DOWN_MUCH if big else STRENGTH_DOWN
            for j in task_idx:
                if j not in done and up:
                    st.want(items[j].value)
                done.add(j)

    # grain and noise that is kept
    amount = [items[i].value for i in where("amount", "small", "big")]
    for j in task_idx:
        if j in done:
            continue
        is_grain = kinds[j] == "grain" or (kinds[j] == "noun" and items[j].value == {_D} and amount)
        if is_grain and mode == "keep":
            if where("all"):
                st.refuse(items[j].value)
            else:
                st.keep_grain = float(amount[-1]) if amount else GRAIN_SOME  # type: ignore[arg-type]
            done.add(j)

    # things to preserve, and qualities that are tasks when asked for ("improve the sharpness")
    for i in where("preserve", "dual"):
        name = items[i].value if kinds[i] == "preserve" else items[i].value[0]  # type: ignore[index]
        if mode in ("neg", "keep"):
            if name not in st.preserve:
                st.preserve.append(str(name))
            done.add(i)
        elif kinds[i] == "dual":
            st.want(items[i].value[1])  # type: ignore[index]
            done.add(i)
        else:
            bad.add(i)  # "fix the colours": no task does that

    # the tasks themselves
    for j in task_idx:
        if j in done:
            continue
        if mode == "pos":
            st.want(items[j].value)
        else:
            st.refuse(items[j].value)
        done.add(j)
    for i in where("only"):
        if items[i].value == "global":
            st.only_global = True
            done.add(i)
        elif task_idx:
            st.only = True
            done.add(i)
    return _report(items, done, bad, st, text, mode)


def _report(items: list[_Item], done: set[int], bad: set[int], st: _State, text: str, mode: str) -> str:
    """Say back the clause's unmapped words: the whole clause if nothing in it was understood."""
    bad = {i for i in bad | {i for i, it in enumerate(items) if it.kind not in ("filler",) and i not in done}}
    bad -= done
    if not bad:
        return mode
    if not done:
        st.not_understood.append(text[items[0].start : items[-1].end])
        return mode
    run: list[int] = []
    for i in sorted(bad):
        if run and any(items[k].kind != "filler" for k in range(run[-1] + 1, i)):
            st.not_understood.append(text[items[run[0]].start : items[run[-1]].end])
            run = []
        run.append(i)
    st.not_understood.append(text[items[run[0]].start : items[run[-1]].end])
    return mode


def parse(text: str) -> Instructions:
    """Read one chat message into :class:`Instructions`; what could not be mapped is kept in words.

    Examples:
        >>> ins = parse("only denoise, a bit gentler, and don't touch the colours")
        >>> [t.value for t in ins.do], ins.only, ins.strength, ins.preserve
        (['denoise'], True, 0.7, ['colours'])
        >>> parse("undo that").command
        'undo'
        >>> parse("denosie the blury photo").do == [Task.DENOISE, Task.MOTION_DEBLUR, Task.DEFOCUS_DEBLUR]
        True
    """
    st = _State()
    mode = "pos"
    for clause in _clauses(_items(text)):
        mode = _clause(clause, st, mode, text)
    return Instructions(
        do=st.do,
        avoid=st.avoid,
        only=st.only or (st.only_global and bool(st.do)),
        strength=st.strength,
        keep_grain=st.keep_grain,
        use_tools=st.use_tools,
        avoid_tools=st.avoid_tools,
        command=st.command,  # type: ignore[arg-type]
        compare_task=st.compare_task,
        preserve=st.preserve,
        not_understood=st.not_understood,
    )


__all__ = ["Instructions", "parse"]
