import { Kind, type FieldNode, type GraphQLResolveInfo, type SelectionSetNode } from 'graphql';

type Selected = Pick<GraphQLResolveInfo, 'fieldNodes' | 'fragments'>;

/**
 * The names of the fields a client selected at `path` below the resolving field (`['edges', 'node']`: the fields of
 * every edge's node), through aliases, fragments and inline fragments. `@skip` and `@include` are not evaluated: a
 * field they leave out still counts, so a caller may read more than the client asked for, never less. Each fragment
 * is walked once per level, so the work is linear in the document however often its fragments are spread.
 */
export function selectedFields(info: Selected, path: readonly string[]): Set<string> {
  let level: readonly FieldNode[] = info.fieldNodes;
  for (const name of path) level = fieldsBelow(level, info).filter((field) => field.name.value === name);
  return new Set(fieldsBelow(level, info).map((field) => field.name.value));
}

function fieldsBelow(fields: readonly FieldNode[], { fragments }: Selected): FieldNode[] {
  const found: FieldNode[] = [];
  const walked = new Set<string>();
  const walk = (set: SelectionSetNode | undefined) => {
    for (const selection of set?.selections ?? []) {
      if (selection.kind === Kind.FIELD) found.push(selection);
      else if (selection.kind === Kind.INLINE_FRAGMENT) walk(selection.selectionSet);
      else if (!walked.has(selection.name.value)) {
        walked.add(selection.name.value);
        walk(fragments[selection.name.value]?.selectionSet);
      }
    }
  };
  for (const field of fields) walk(field.selectionSet);
  return found;
}
