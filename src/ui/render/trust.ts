/** Human renderers for keys, signatures, provenance and the signature check. */
import type { Theme } from '../../core/output.js';
import type { ShowResult } from '../../registry/query.js';
import type { AttestationSummary, Attested, SignaturesReport, TrustedPull } from '../../trust/attest.js';
import type { SignatureCheck } from '../../trust/policy.js';
import type { KeygenResult, SignResult } from '../../trust/sign.js';
import type { VerifyResult } from '../../registry/verify.js';
import { renderShow, renderVerify } from './registry.js';
import { renderPull } from './remote.js';

const shortHint = (hint: string | undefined) => (hint ? hint.slice(0, 16) : 'no key hint');

export function renderKeygen(r: KeygenResult, t: Theme): string {
  return [
    t.success(`✔ Wrote an ECDSA ${r.curve} key pair`),
    `  private key  ${t.path(r.privateKey)}  (keep it secret: a CI secret, not a commit)`,
    `  public key   ${t.path(r.publicKey)}  (give it to whoever verifies)`,
    `  key hint     ${r.keyHint}`,
    `Next: ${t.code(`maas sign NAME@VERSION --key ${r.privateKey}`)}`,
  ].join('\n');
}

export function renderSign(r: SignResult, t: Theme): string {
  const head = r.status === 'signed'
    ? t.success(`✔ Signed ${t.ref(r.ref)} (${r.files.length} file${r.files.length === 1 ? '' : 's'}: ${r.files.join(', ')})`)
    : t.success(`✔ ${t.ref(r.ref)} is already signed by this key; kept that signature`);
  return [
    head,
    `  key          ${r.keyHint}${r.method === 'certificate' ? ' (certificate chain)' : ''}`,
    `  stored       ${r.path}`,
    ...(r.output ? [`  written      ${t.path(r.output)}`] : []),
    `Next: ${t.code(`maas push ${r.ref}`)} sends it as a referrer · ${t.code(`maas verify ${r.ref} --signatures --key key.pub.pem`)}`,
  ].join('\n');
}

/** The lines register, convert and pull add for what they signed or attested. */
export function renderAttested(attested: Attested[] | undefined, t: Theme): string[] {
  return (attested ?? []).map((a) => {
    const what = a.kind === 'provenance' ? (a.keyHint ? 'signed provenance' : 'provenance (unsigned: no key)') : 'signature';
    return `  ${what.padEnd(12)} ${a.path}${a.keyHint ? t.dim(` (key ${shortHint(a.keyHint)})`) : ''}${a.status === 'unchanged' ? t.dim(' (already there)') : ''}`;
  });
}

function renderCheck(c: SignatureCheck, t: Theme): string {
  const who = c.signer ? `certificate ${c.signer}` : `key ${shortHint(c.keyHint)}`;
  return c.ok
    ? `  ${t.success('✔')} ${c.source}: verified (${who})${c.warnings?.length ? t.warn(` ⚠ ${c.warnings.join('; ')}`) : ''}`
    : `  ${t.error('✖')} ${c.source}: ${c.message ?? c.reason}`;
}

export function renderSignatures(r: SignaturesReport, t: Theme): string {
  const lines: string[] = [];
  for (const v of r.versions) {
    lines.push(v.ok ? `${t.success('✔')} ${t.ref(v.ref)} is signed by a trusted key` : `${t.error('✖')} ${t.ref(v.ref)} ${v.signatures.length ? 'has no signature that verifies' : 'is not signed'}`);
    for (const c of v.signatures) lines.push(renderCheck(c, t));
  }
  const bad = r.versions.filter((v) => !v.ok).length;
  lines.push(bad === 0
    ? t.success(`✔ Every version checked (${r.versions.length}) has a signature that verifies with the keys of ${r.trust}.`)
    : t.error(`✖ ${bad} of ${r.versions.length} version${r.versions.length === 1 ? '' : 's'} without a signature that verifies with the keys of ${r.trust}.`));
  return lines.join('\n');
}

/** `maas show`'s lines for a version's attestations. */
export function renderAttestations(list: AttestationSummary[], t: Theme): string[] {
  if (list.length === 0) return [`  signed       ${t.dim('no')} (${t.code('maas sign REF --key key.pem')})`];
  return [
    '  attestations',
    ...list.map((a) => {
      const by = a.signer ? `certificate ${a.signer}` : a.keyHint ? `key ${shortHint(a.keyHint)}` : undefined;
      const what = a.kind === 'signature' ? 'signature' : a.kind === 'provenance' ? (a.signed ? 'provenance (signed)' : 'provenance') : 'sbom (CycloneDX)';
      return `    ${what.padEnd(20)} ${by ? `${by}  ` : ''}${t.dim(a.path)}${a.unreadable ? t.warn(' (unreadable: not JSON; remove it with git rm)') : ''}`;
    }),
  ];
}

export function renderShowAttested(r: ShowResult & { attestations: AttestationSummary[] }, t: Theme): string {
  return [renderShow(r, t), ...renderAttestations(r.attestations, t)].join('\n');
}

/** `maas verify`, with the signature check under it when asked. */
export function renderVerifyAll(r: VerifyResult & { signatures?: SignaturesReport }, t: Theme): string {
  if (!r.signatures) return renderVerify(r, t);
  // `ok` covers both checks; the registry's own line speaks of its problems only.
  return `${renderVerify({ ...r, ok: r.problems.length === 0 }, t)}\n${renderSignatures(r.signatures, t)}`;
}

export function renderTrustedPull(r: TrustedPull, t: Theme): string {
  return [
    renderPull(r, t, 'Pulled'),
    ...(r.signatures ?? []).map((c) => renderCheck(c, t)),
    ...renderAttested(r.attested, t),
    ...(r.written ? [`  written      ${t.path(r.written.dir)}: ${r.written.files.map((f) => f.path).join(', ')}`] : []),
  ].join('\n');
}

export function renderTrustedImport(r: TrustedPull, t: Theme): string {
  return [renderPull(r, t, 'Imported'), ...(r.signatures ?? []).map((c) => renderCheck(c, t))].join('\n');
}

/** A renderer with the lines of what was signed or attested under it. */
export function withAttested<R>(render: (r: R, t: Theme) => string): (r: R & { attested?: Attested[] | undefined }, t: Theme) => string {
  return (r, t) => [render(r, t), ...renderAttested(r.attested, t)].join('\n');
}
