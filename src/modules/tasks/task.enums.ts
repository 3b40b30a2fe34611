import { registerEnumType } from 'type-graphql';

export enum TaskStatus {
  PENDING = 'PENDING',
  IN_PROGRESS = 'IN_PROGRESS',
  COMPLETED = 'COMPLETED',
}

export enum TaskPriority {
  LOW = 'LOW',
  MEDIUM = 'MEDIUM',
  HIGH = 'HIGH',
  URGENT = 'URGENT',
}

registerEnumType(TaskStatus, {
  name: 'TaskStatus',
  description: 'Where a task stands',
  valuesConfig: {
    PENDING: { description: 'Not started (a new task’s status unless given)' },
    IN_PROGRESS: { description: 'Started' },
    COMPLETED: { description: 'Done: completedAt is set' },
  },
});
registerEnumType(TaskPriority, {
  name: 'TaskPriority',
  description: 'How much a task matters, from LOW to URGENT (the PRIORITY order sorts by this rank)',
  valuesConfig: {
    LOW: { description: 'Rank 0' },
    MEDIUM: { description: 'Rank 1 (a new task’s priority unless given)' },
    HIGH: { description: 'Rank 2' },
    URGENT: { description: 'Rank 3' },
  },
});
