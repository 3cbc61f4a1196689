import factory
from django.contrib.auth import get_user_model

from annotate.models import Example, Membership, PromptTemplate, Role, Task


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ["username"]

    username = factory.Sequence(lambda n: f"user{n}")
    password = factory.django.Password("pw-for-tests-1")


class TaskFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Task
        skip_postgeneration_save = True

    slug = factory.Sequence(lambda n: f"task-{n}")
    name = factory.Sequence(lambda n: f"Task {n}")
    guidelines = "Answer briefly and politely."

    @factory.post_generation
    def template(self, create, extracted, **kwargs):
        if create and not self.templates.exists():
            PromptTemplate.objects.create(task=self, version=1)


class MembershipFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Membership

    task = factory.SubFactory(TaskFactory)
    user = factory.SubFactory(UserFactory)
    role = Role.ANNOTATOR


class ExampleFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Example

    task = factory.SubFactory(TaskFactory)
    template = factory.LazyAttribute(lambda o: o.task.current_template)
    instruction = factory.Sequence(lambda n: f"Question number {n}?")
    input = ""
    completion = ""
