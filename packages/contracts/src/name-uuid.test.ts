import { nameBasedUuid } from './name-uuid.js';

describe('nameBasedUuid', () => {
  // RFC 4122 appendix B's example, corrected by erratum 1428: "www.example.com" in the DNS namespace.
  const DNS = Buffer.from('6ba7b8109dad11d180b400c04fd430c8', 'hex');

  it('derives the RFC 4122 version 5 UUID of a name', () => {
    expect(nameBasedUuid(DNS, 'www.example.com')).toBe('2ed6657d-e927-568b-95e1-2665a8aea6a2');
  });

  it('gives another name or namespace another id', () => {
    expect(nameBasedUuid(DNS, 'www.example.org')).not.toBe(nameBasedUuid(DNS, 'www.example.com'));
    expect(nameBasedUuid(Buffer.alloc(16), 'www.example.com')).not.toBe(nameBasedUuid(DNS, 'www.example.com'));
  });
});
