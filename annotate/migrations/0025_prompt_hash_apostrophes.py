"""Recompute every example's prompt hash: the normalisation now drops apostrophes ("What's" = "whats", issue 14),
so stored hashes made by the old rule would no longer match the new ones of the same prompt. Reads and writes in
batches by id (bounded memory); only rows whose hash changes are written."""

from django.db import migrations

BATCH = 5000


def rehash(apps, schema_editor):
    from annotate.services import prompt_hash

    Example = apps.get_model("annotate", "Example")
    last = 0
    while True:
        rows = list(
            Example.objects.filter(pk__gt=last)
            .order_by("pk")
            .values_list("pk", "instruction", "context", "input", "messages", "prompt_hash")[:BATCH]
        )
        if not rows:
            return
        changed = []
        for pk, instruction, context, input_, messages, stored in rows:
            turns = messages if isinstance(messages, list) else ()
            turns = [m for m in turns if isinstance(m, dict)]
            fresh = prompt_hash({"instruction": instruction, "context": context, "input": input_}, turns)
            if fresh != stored:
                changed.append(Example(pk=pk, prompt_hash=fresh))
        Example.objects.bulk_update(changed, ["prompt_hash"], batch_size=1000)
        last = rows[-1][0]


class Migration(migrations.Migration):
    dependencies = [("annotate", "0024_task_input_reuse")]

    operations = [migrations.RunPython(rehash, migrations.RunPython.noop, elidable=True)]
