import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROJECT_ROOT } from '../../src/config/app-version.js';
import { CONFIG_VARIABLES } from '../../src/config/config.js';

const PAGE = join(PROJECT_ROOT, 'docs', 'configuration.md');

/** The variable named in the first cell of each row of every table headed `| variable |`. */
function variablesDocumented(markdown: string): string[] {
  const names: string[] = [];
  let inTable = false;
  for (const line of markdown.split('\n')) {
    const firstCell = /^\s*\|([^|]*)\|/.exec(line)?.[1]?.trim();
    if (firstCell === undefined) inTable = false;
    else if (firstCell === 'variable') inTable = true;
    else if (inTable && !/^:?-+:?$/.test(firstCell))
      names.push(...[...firstCell.matchAll(/`([A-Z][A-Z0-9_]*)`/g)].map((match) => match[1]!));
  }
  return names;
}

const sorted = (names: Iterable<string>) => [...names].sort();

describe('docs/configuration.md', () => {
  const documented = variablesDocumented(readFileSync(PAGE, 'utf8'));

  it('lists exactly the variables the configuration module reads', () => {
    const read = new Set([...CONFIG_VARIABLES]);
    const listed = new Set(documented);
    expect({
      missingFromTheDocs: sorted([...read].filter((name) => !listed.has(name))),
      notReadByTheModule: sorted([...listed].filter((name) => !read.has(name))),
    }).toEqual({ missingFromTheDocs: [], notReadByTheModule: [] });
  });

  it('lists each variable once', () => {
    expect(documented.length).toBeGreaterThan(0);
    expect(sorted(documented)).toEqual(sorted(new Set(documented)));
  });
});
