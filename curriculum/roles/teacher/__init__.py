"""Teachers write new problems aimed at what the Solver failed (`teacher.kind`)."""

from curriculum.roles.teacher.base import Failure, Teacher, TeachingResult
from curriculum.roles.teacher.symbolic import SymbolicTeacher

__all__ = ["Failure", "SymbolicTeacher", "Teacher", "TeachingResult"]
