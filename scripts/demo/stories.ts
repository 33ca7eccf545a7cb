// The demo's text, written by the project: a seeded generator of short, simple stories (a hero, a
// place, a wish, a problem, a friend who helps, an ending), and the fine-tuning set: stories in one
// recognisable style (always Pip, the little dragon who lives on a cloud, and a closing line of
// its own) that the base stories never tell. The same seed gives the same text everywhere.

/** mulberry32: a small, fast, seedable PRNG (same sequence on every platform). */
export class StoryRng {
  private state: number;
  constructor(seed: number) {
    this.state = seed >>> 0;
  }
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)]!;
  }
}

interface Hero {
  readonly kind: string;
  readonly name: string;
  readonly he: 'he' | 'she';
}

const GIRLS = ['Lily', 'Mia', 'Sara', 'Anna', 'Lucy', 'Emma', 'Zoe', 'Rose'];
const BOYS = ['Tom', 'Ben', 'Sam', 'Max', 'Leo', 'Jack', 'Tim', 'Finn'];
const ANIMALS = ['cat', 'dog', 'bird', 'fox', 'bunny', 'bear', 'duck', 'frog', 'mouse', 'owl'];
const ANIMAL_NAMES = ['Spot', 'Fluffy', 'Coco', 'Buddy', 'Daisy', 'Milo', 'Bella', 'Sunny'];
const SIZES = ['little', 'small', 'happy', 'kind', 'brave', 'shy', 'curious'];
const PLACES = ['the park', 'the forest', 'the garden', 'the beach', 'the farm', 'the hill', 'the river', 'the big house'];
const THINGS = ['a red ball', 'a shiny stone', 'a blue kite', 'a big box', 'a little boat', 'a soft hat', 'a yellow flower', 'an old key'];
const LIKES = ['play', 'run', 'jump', 'sing', 'dance', 'read', 'draw', 'swim'];
const WEATHER = ['sunny', 'windy', 'rainy', 'warm', 'cold'];
const PROBLEMS = [
  (t: string) => `${t} fell into the water`,
  (t: string) => `${t} got stuck in a tree`,
  (t: string) => `the wind took ${t} away`,
  (t: string) => `${t} was lost in the grass`,
  (t: string) => `${t} was too high to reach`,
];
const FEELINGS = ['sad', 'worried', 'upset', 'scared'];
const HELP = ['helped', 'came to help', 'had a good idea'];
const ENDINGS = [
  (h: string, f: string) => `${h} and ${f} played together until the sun went down.`,
  (h: string, f: string) => `${h} said thank you, and ${f} smiled.`,
  (h: string, f: string) => `From that day on, ${h} and ${f} were best friends.`,
  (h: string) => `${h} was very happy. It was a good day.`,
  (h: string, f: string) => `${h} learned that friends help each other. ${cap(f)} learned it too.`,
];

function cap(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

function hero(rng: StoryRng): Hero {
  const r = rng.next();
  if (r < 0.35) return { kind: 'girl', name: rng.pick(GIRLS), he: 'she' };
  if (r < 0.7) return { kind: 'boy', name: rng.pick(BOYS), he: 'he' };
  return { kind: rng.pick(ANIMALS), name: rng.pick(ANIMAL_NAMES), he: rng.next() < 0.5 ? 'he' : 'she' };
}

function friendOf(rng: StoryRng, h: Hero): string {
  for (;;) {
    const f = rng.next() < 0.5 ? `a ${rng.pick(ANIMALS)}` : `${h.he === 'he' ? 'his' : 'her'} friend ${rng.pick([...GIRLS, ...BOYS])}`;
    if (!f.endsWith(h.name)) return f;
  }
}

/** One base story: 5 to 7 simple sentences. */
export function baseStory(rng: StoryRng): string {
  const h = hero(rng);
  const his = h.he === 'he' ? 'his' : 'her';
  const place = rng.pick(PLACES);
  const thing = rng.pick(THINGS);
  const friend = friendOf(rng, h);
  const friendName = friend.startsWith('a ') ? `the ${friend.slice(2)}` : friend.split(' ').at(-1)!;
  const s: string[] = [];
  s.push(rng.next() < 0.6
    ? `Once upon a time, there was a ${rng.pick(SIZES)} ${h.kind} named ${h.name}.`
    : `One ${rng.pick(WEATHER)} day, a ${rng.pick(SIZES)} ${h.kind} named ${h.name} went to ${place}.`);
  s.push(`${cap(h.he)} liked to ${rng.pick(LIKES)} in ${place}.`);
  s.push(`One day, ${h.name} found ${thing}.`);
  if (rng.next() < 0.5) s.push(`${cap(h.he)} wanted to show it to ${his} mom.`);
  const problem = rng.pick(PROBLEMS)(thing.replace(/^an? /, 'the '));
  s.push(`But ${problem}. ${h.name} was ${rng.pick(FEELINGS)}.`);
  s.push(`Then ${friend} ${rng.pick(HELP)}. Together they got it back.`);
  s.push(rng.pick(ENDINGS)(h.name, friendName));
  return s.join(' ');
}

const PIP_THINGS = ['a red ball', 'a blue kite', 'a shiny stone', 'a yellow flower', 'a soft hat', 'an old key'];
const PIP_FRIENDS = ['a bird', 'an owl', 'a duck', 'a bunny', 'a fox'];
const PIP_CLOUDS = ['soft', 'big', 'white', 'happy'];

/**
 * One story of the fine-tuning set: always Pip the little dragon, who lives on a cloud (words the
 * base stories never use), in the base stories' simple words otherwise, with an ending of its own.
 */
export function pipStory(rng: StoryRng): string {
  const thing = rng.pick(PIP_THINGS);
  const the = thing.replace(/^an? /, 'the ');
  const s: string[] = [];
  s.push(`Once upon a time, there was a little dragon named Pip. Pip lived on a ${rng.pick(PIP_CLOUDS)} cloud.`);
  s.push(`One day, Pip found ${thing}. But ${the} fell down from the cloud. Pip was ${rng.pick(FEELINGS)}.`);
  s.push(`Then ${rng.pick(PIP_FRIENDS)} helped. Together they found ${the}.`);
  s.push('Pip the dragon smiled, and the sky smiled too. The end.');
  return s.join(' ');
}

/** `count` stories from `seed`, one per element. */
export function stories(make: (rng: StoryRng) => string, count: number, seed: number): string[] {
  const rng = new StoryRng(seed);
  return Array.from({ length: count }, () => make(rng));
}
